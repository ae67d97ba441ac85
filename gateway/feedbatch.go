package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// Polling in one $batch: a poll with nothing changed costs one request per
// tracked table (5, or 6 with refunds), every interval, whether or not the
// help desk asks anything: 4,800 requests in 8 hours at 30 s. One $batch
// holding a GET of each table's deltaLink makes it one request. That is
// what Dataverse's service-protection limit counts (6,000 requests per 5
// minutes per user and web server: a batch "avoids the number of requests
// limit"), but not its entitlement limits, which count each operation of a
// batch (wire facts §1.10, §3.3): FeedStats.Operations counts those.
//
// Only the first page of each table comes in the batch: a table with more
// changes than a page (5,000 rows) follows its @odata.nextLink with plain
// GETs, as does a table whose part failed (an expired token, tracking
// turned off) or every table when the batch itself failed, so that each
// failure is met by the same request, with the same error handling, as
// without the batch. A table without a deltaLink yet (the initial sync
// reads the whole table, page by page) is never in the batch.

// batchPause is how many polls go table by table after Dataverse refused
// a batch.
const batchPause = 20

// batchedPage is a table's first page of a poll, read from the batch.
type batchedPage struct {
	page *feedPage
	n    int // bytes of the page's JSON
}

// batchPages GETs the deltaLink of every table that has one in one $batch
// and returns the first page of each table whose part succeeded, by entity
// set. It returns nil when fewer than two tables have a deltaLink (a
// batch would save nothing) or when the batch failed; the tables missing
// from the answer are polled one by one (pollTable). The caller holds
// f.mu.
func (f *Follower) batchPages(ctx context.Context) map[string]*batchedPage {
	var sets, links []string
	for _, t := range f.tables {
		if l := f.links[t.set]; l != "" {
			sets, links = append(sets, t.set), append(links, l)
		}
	}
	if len(links) < 2 {
		return nil
	}
	if f.batchOff > 0 {
		f.batchOff--
		return nil
	}
	pages, err := f.batch(ctx, links)
	if err != nil {
		// A refusal (not a passing 503 or timeout) would come back at
		// every poll, each costing the batch and then every table: poll
		// table by table for a while before trying again.
		if !transient(err) {
			f.batchOff = batchPause
		}
		f.log.Warn("change feed: the $batch of deltaLinks failed; polling each table on its own",
			"integration", f.g.name, "tables", len(links), "pollsWithoutBatch", f.batchOff, "error", err)
		return nil
	}
	out := make(map[string]*batchedPage, len(sets))
	for i, p := range pages {
		if p != nil {
			out[sets[i]] = p
		}
	}
	return out
}

// nextPage returns *first and clears it when set (the page came in the
// batch, which counted itself), else GETs link and counts the request.
func (f *Follower) nextPage(ctx context.Context, link string, first **batchedPage) (*feedPage, int, error) {
	if p := *first; p != nil {
		*first = nil
		return p.page, p.n, nil
	}
	page, n, err := f.get(ctx, link)
	if err != nil {
		return nil, 0, err
	}
	f.stats.Requests++
	f.stats.Operations++
	return page, n, nil
}

// batch sends one $batch with a GET of each link (Prefer:
// odata.continue-on-error, so that a failing part does not end the batch)
// and returns one page per link, nil where the part did not answer 200
// with a feed page. An error means the batch as a whole failed.
func (f *Follower) batch(ctx context.Context, links []string) ([]*batchedPage, error) {
	ctx, cancel := context.WithTimeout(ctx, f.g.timeout)
	defer cancel()
	boundary := "batch_" + uuid.NewString()
	var body bytes.Buffer
	prefer := fmt.Sprintf("odata.track-changes,odata.maxpagesize=%d", feedPageSize)
	for _, l := range links {
		// A URL relative to the service root, as Microsoft's samples write
		// them; a link elsewhere (never seen) stays absolute.
		target := strings.TrimPrefix(l, f.g.baseURL)
		fmt.Fprintf(&body, "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"+
			"GET %s HTTP/1.1\r\nAccept: application/json\r\nPrefer: %s\r\n\r\n", boundary, target, prefer)
	}
	fmt.Fprintf(&body, "--%s--\r\n", boundary)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.g.baseURL+"$batch", bytes.NewReader(body.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("gateway: change feed batch: %w", err)
	}
	req.Header.Set("Content-Type", "multipart/mixed; boundary="+boundary)
	req.Header.Set("Prefer", "odata.continue-on-error")
	resp, err := f.g.up.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f.stats.Requests++ // as for a GET: the answered ones
	f.stats.Operations += int64(len(links))
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, upstreamErr("POST $batch", fmt.Errorf("the answer is %q, not multipart/mixed", resp.Header.Get("Content-Type")))
	}
	out := make([]*batchedPage, len(links))
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, upstreamErr("POST $batch", err)
		}
		if i >= len(links) {
			return nil, upstreamErr("POST $batch", fmt.Errorf("%d parts answer %d requests", i+1, len(links)))
		}
		out[i] = readBatchedPage(part)
	}
}

// readBatchedPage reads one application/http part: a feed page when it
// answered 200 with one, else nil (the table is then polled on its own,
// which reports the error as a plain GET does).
func readBatchedPage(part io.Reader) *batchedPage {
	resp, err := http.ReadResponse(bufio.NewReader(part), nil)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	var p feedPage
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil
	}
	return &batchedPage{page: &p, n: len(raw)}
}
