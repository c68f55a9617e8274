// Command jget prints values from JSON on stdin, so scripts/split-demo.sh needs nothing beyond bash, curl
// and Go:
//
//	jget PATH      PATH is dot-separated: object keys, array indices, or * for every element;
//	               strings print raw, everything else as compact JSON, one value per line.
//	jget -len PATH prints the length of the array or object at PATH.
//
//	curl ... | jget .nodes.0.fingerprint
//	curl ... | jget '.devices.*.miner_id'
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	args := os.Args[1:]
	count := len(args) > 0 && args[0] == "-len"
	if count {
		args = args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: jget [-len] PATH   (e.g. .nodes.0.node_id, '.items.*.state')")
		os.Exit(2)
	}
	var doc any
	if err := json.NewDecoder(os.Stdin).Decode(&doc); err != nil {
		fmt.Fprintln(os.Stderr, "jget: stdin is not JSON:", err)
		os.Exit(1)
	}
	var parts []string
	for _, p := range strings.Split(strings.TrimPrefix(args[0], "."), ".") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	vals := walk([]any{doc}, parts)
	if count {
		n := 0
		for _, v := range vals {
			switch x := v.(type) {
			case []any:
				n += len(x)
			case map[string]any:
				n += len(x)
			}
		}
		fmt.Println(n)
		return
	}
	for _, v := range vals {
		if s, ok := v.(string); ok {
			fmt.Println(s)
			continue
		}
		b, _ := json.Marshal(v)
		fmt.Println(string(b))
	}
}

func walk(vals []any, parts []string) []any {
	if len(parts) == 0 {
		return vals
	}
	var next []any
	for _, v := range vals {
		switch x := v.(type) {
		case map[string]any:
			if parts[0] == "*" {
				for _, e := range x {
					next = append(next, e)
				}
			} else if e, ok := x[parts[0]]; ok {
				next = append(next, e)
			}
		case []any:
			if parts[0] == "*" {
				next = append(next, x...)
			} else if i, err := strconv.Atoi(parts[0]); err == nil && i >= 0 && i < len(x) {
				next = append(next, x[i])
			}
		}
	}
	return walk(next, parts[1:])
}
