// Command dvgen generates a typed Go client for a Dataverse org from its
// CSDL $metadata (a file, or the org URL) and, optionally, its
// EntityDefinitions (for SchemaName casing and option-set constants).
//
//	dvgen --metadata FILE|URL --tables account,contact,salesorder,salesorderdetail,product \
//	      [--entity-definitions FILE] --out DIR --package NAME [--check]
//
// With --check nothing is written: dvgen exits with status 1 and a short
// diff when DIR differs from what it would generate. The logic is in
// package codegen; this command parses flags, reads and writes files.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dvgate/dvgate/codegen"
	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/entitydefs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	c := &command{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, terminal: isTerminal(os.Stderr)}
	code := c.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device (a terminal), where a
// progress line that rewrites itself is welcome; in logs it is noise.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// command is dvgen's environment: main fills it from the process, tests
// inject their own (an HTTP client that trusts a test server, a fake
// environment, a terminal or not).
type command struct {
	getenv         func(string) string
	httpClient     *http.Client // base client for the org and Entra; nil = the default
	stdout, stderr io.Writer
	terminal       bool // stderr is a terminal: show download progress
}

type options struct {
	metadata, entityDefs, saveDefs, out, pkg string
	tables                                   []string
	check                                    bool
}

// run is the whole command, so that tests exercise the real wiring.
func (c *command) run(ctx context.Context, args []string) int {
	stdout, stderr := c.stdout, c.stderr
	o, err := parseFlags(args, stdout, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "dvgen:", err)
		return 2
	}
	files, stats, err := c.generate(ctx, o)
	if err != nil {
		printError(stderr, err)
		return 1
	}
	if o.check {
		diff, err := check(o.out, files)
		if err != nil {
			fmt.Fprintln(stderr, "dvgen:", err)
			return 1
		}
		if diff != "" {
			fmt.Fprintf(stderr, "%sdvgen: %s is stale; run go generate (or dvgen without --check)\n", diff, o.out)
			return 1
		}
		fmt.Fprintf(stdout, "dvgen: %s is up to date\n", o.out)
		return 0
	}
	written, err := write(o.out, files)
	if err != nil {
		fmt.Fprintln(stderr, "dvgen:", err)
		return 1
	}
	fmt.Fprintf(stdout, "dvgen: %d tables, %d columns, %d lines of Go in %d files (%d changed) in %s\n",
		stats.tables, stats.columns, stats.lines, stats.goFiles, written, o.out)
	return 0
}

// dvgenHelp is what dvgen --help prints before the flags.
const dvgenHelp = `dvgen generates a typed Go client for a Dataverse org from its CSDL $metadata
(a file, or the org itself), for the tables you name: models, a client, typed
columns and query helpers. With the org's EntityDefinitions it also gets the
SchemaName casing and option-set constants right.

Usage:
  dvgen --metadata FILE|URL --tables NAMES --out DIR --package NAME [flags]

Examples:
  # from files downloaded from the org
  dvgen --metadata metadata.xml --entity-definitions entitydefs.json \
    --tables account,contact,salesorder,salesorderdetail,product --out ./internal/crm --package crm

  # straight from the org (signs in with DATAVERSE_URL's AZURE_TENANT_ID, AZURE_CLIENT_ID
  # and AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE)
  dvgen --metadata https://contoso.crm4.dynamics.com --tables account,contact \
    --out ./internal/crm --package crm

  # in CI: exit 1 with a diff when the committed client is stale
  dvgen --metadata metadata.xml --tables account,contact --out ./internal/crm --package crm --check

Exit status: 0 done (or up to date), 1 failed or stale (--check), 2 usage error.

Flags:
`

func parseFlags(args []string, stdout, stderr io.Writer) (options, error) {
	var o options
	var tables string
	fs := flag.NewFlagSet("dvgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout) // asked for: it is the output, not an error
		}
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), dvgenHelp)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.metadata, "metadata", "", "CSDL `$metadata` file, or the org URL (https://org.crm4.dynamics.com)")
	fs.StringVar(&o.entityDefs, "entity-definitions", "", "EntityDefinitions JSON `file` (optional: SchemaName casing, option-set constants); with an org URL, downloaded unless given")
	fs.StringVar(&o.saveDefs, "save-entity-definitions", "", "with an org URL: also write the downloaded EntityDefinitions to this `file`")
	fs.StringVar(&tables, "tables", "", "comma-separated logical `names` of the tables to generate")
	fs.StringVar(&o.out, "out", "", "output `directory`")
	fs.StringVar(&o.pkg, "package", "", "Go package `name`")
	fs.BoolVar(&o.check, "check", false, "write nothing; exit 1 with a diff when the output directory is stale")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, t := range strings.Split(tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.tables = append(o.tables, t)
		}
	}
	var missing []string
	for name, v := range map[string]string{"--metadata": o.metadata, "--out": o.out, "--package": o.pkg} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(o.tables) == 0 {
		missing = append(missing, "--tables")
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return o, fmt.Errorf("missing %s (see dvgen -h)", strings.Join(missing, ", "))
	}
	if o.saveDefs != "" && (!isURL(o.metadata) || o.entityDefs != "") {
		return o, errors.New("--save-entity-definitions needs --metadata with the org URL and no --entity-definitions")
	}
	return o, nil
}

// invocation is the canonical command line for the file headers: the
// inputs as given, tables sorted, without --out and --check, so that the
// header does not depend on where or how dvgen was run.
func (o options) invocation() string {
	s := "dvgen --metadata " + o.metadata
	if o.entityDefs != "" {
		s += " --entity-definitions " + o.entityDefs
	}
	t := slices.Clone(o.tables)
	slices.Sort(t)
	return s + " --tables " + strings.Join(slices.Compact(t), ",") + " --package " + o.pkg
}

// noDefsWarning is printed when no EntityDefinitions are given: $metadata
// has only logical names, so the Go names lose their word boundaries.
const noDefsWarning = `dvgen: warning: no --entity-definitions: Go names fall back to logical-name casing
  (Emailaddress1, Transactioncurrencies instead of EMailAddress1, TransactionCurrencies) and choice
  columns stay int32 without option-set constants. With --metadata https://<org>.crm.dynamics.com dvgen
  downloads them (add --save-entity-definitions FILE to keep a copy for later runs).
`

type stats struct{ tables, columns, lines, goFiles int }

func (c *command) generate(ctx context.Context, o options) (map[string][]byte, stats, error) {
	var st stats
	var model *csdl.Model
	var defs *entitydefs.Definitions
	if isURL(o.metadata) {
		m, d, err := c.download(ctx, o)
		if err != nil {
			return nil, st, err
		}
		model, defs = m, d
	} else {
		f, err := os.Open(o.metadata)
		if err != nil {
			return nil, st, err
		}
		model, err = csdl.Read(f, csdl.Tables(o.tables...))
		f.Close()
		if err != nil {
			return nil, st, fmt.Errorf("%s: %w", o.metadata, err)
		}
	}
	if o.entityDefs != "" {
		f, err := os.Open(o.entityDefs)
		if err != nil {
			return nil, st, err
		}
		defs, err = entitydefs.Read(f)
		f.Close()
		if err != nil {
			return nil, st, fmt.Errorf("%s: %w", o.entityDefs, err)
		}
	}
	if defs == nil {
		fmt.Fprint(c.stderr, noDefsWarning)
	}
	files, err := codegen.Generate(codegen.Config{
		Model: model, Definitions: defs, Tables: o.tables, Package: o.pkg, Invocation: o.invocation(),
	})
	if err != nil {
		return nil, st, err
	}
	st.tables = len(slices.Compact(slices.Sorted(slices.Values(o.tables))))
	for _, t := range o.tables {
		if et := model.EntityType(t); et != nil {
			st.columns += len(et.AllProperties())
		}
	}
	for name, b := range files {
		if strings.HasSuffix(name, ".go") {
			st.goFiles++
			st.lines += bytes.Count(b, []byte("\n"))
		}
	}
	return files, st, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// check compares the generated files with dir and returns a short diff, ""
// when up to date. Generated Go files in dir that dvgen no longer produces
// count as stale.
func check(dir string, files map[string][]byte) (string, error) {
	var b strings.Builder
	for _, name := range slices.Sorted(maps(files)) {
		old, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "%s: missing\n", name)
			continue
		}
		if err != nil {
			return "", err
		}
		if !bytes.Equal(old, files[name]) {
			b.WriteString(codegen.ShortDiff(name, string(old), string(files[name]), 20))
		}
	}
	extra, err := orphans(dir, files)
	if err != nil {
		return "", err
	}
	for _, name := range extra {
		fmt.Fprintf(&b, "%s: no longer generated\n", name)
	}
	return b.String(), nil
}

// write writes the files whose bytes changed (so untouched files keep their
// modification time) and removes generated Go files no longer produced.
func write(dir string, files map[string][]byte) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	n := 0
	for _, name := range slices.Sorted(maps(files)) {
		path := filepath.Join(dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return n, err
		}
		n++
	}
	extra, err := orphans(dir, files)
	if err != nil {
		return n, err
	}
	for _, name := range extra {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// orphans lists *.gen.go files in dir that are not in files.
func orphans(dir string, files map[string][]byte) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.gen.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if _, ok := files[filepath.Base(m)]; !ok {
			out = append(out, filepath.Base(m))
		}
	}
	slices.Sort(out)
	return out, nil
}

func maps(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
