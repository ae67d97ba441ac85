package codegen

import (
	"fmt"
	"strings"
)

// Edit is one line of a line diff: Op is ' ' (kept), '-' (only in old) or
// '+' (only in new).
type Edit struct {
	Op   byte
	Line string
}

// LineDiff returns the shortest edit script from old to new, line by line
// (Myers' O(ND) algorithm: fast when the texts are similar, which is the
// case for regenerated code).
func LineDiff(old, new string) []Edit {
	a, b := splitLines(old), splitLines(new)
	n, m := len(a), len(b)
	max := n + m
	v := make([]int, 2*max+2)
	var trace [][]int
	off := max + 1
	for d := 0; d <= max; d++ {
		trace = append(trace, append([]int(nil), v...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, a, b, off, d)
			}
		}
	}
	return nil
}

func backtrack(trace [][]int, a, b []string, off, d int) []Edit {
	var edits []Edit
	x, y := len(a), len(b)
	for ; d > 0; d-- {
		v := trace[d]
		k := x - y
		var pk int
		if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := v[off+pk]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			edits = append(edits, Edit{' ', a[x]})
		}
		if x == px {
			y--
			edits = append(edits, Edit{'+', b[y]})
		} else {
			x--
			edits = append(edits, Edit{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		edits = append(edits, Edit{' ', a[x]})
	}
	for i, j := 0, len(edits)-1; i < j; i, j = i+1, j-1 {
		edits[i], edits[j] = edits[j], edits[i]
	}
	return edits
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// ShortDiff renders the changed lines of a diff with up to context lines
// around them, at most limit changed lines; "" when equal.
func ShortDiff(name, old, new string, limit int) string {
	edits := LineDiff(old, new)
	var b strings.Builder
	shown, changed := 0, 0
	for i, e := range edits {
		if e.Op == ' ' {
			continue
		}
		changed++
		if shown >= limit {
			continue
		}
		shown++
		if shown == 1 {
			fmt.Fprintf(&b, "--- %s (on disk)\n+++ %s (generated)\n", name, name)
		}
		fmt.Fprintf(&b, "%d: %c%s", i+1, e.Op, strings.TrimSuffix(e.Line, "\n")+"\n")
	}
	if changed > shown {
		fmt.Fprintf(&b, "... and %d more changed lines\n", changed-shown)
	}
	return b.String()
}
