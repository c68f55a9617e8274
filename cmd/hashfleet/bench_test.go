package main

import (
	"slices"
	"testing"
)

func TestLeadingNamesSplitsSuitesFromFlags(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		names, rest []string
	}{
		{[]string{"poll", "baseline", "--miners", "10"}, []string{"poll", "baseline"}, []string{"--miners", "10"}},
		{[]string{"--miners", "10", "poll"}, []string{}, []string{"--miners", "10", "poll"}},
		{[]string{"poll"}, []string{"poll"}, nil},
		{nil, nil, nil},
	} {
		names, rest := leadingNames(tc.args)
		if !slices.Equal(names, tc.names) || !slices.Equal(rest, tc.rest) {
			t.Errorf("leadingNames(%q) = %q, %q; want %q, %q", tc.args, names, rest, tc.names, tc.rest)
		}
	}
}
