package clidoc

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestParse covers the reading of the examples on made-up
// text: the shell words, the continued lines and the JSON repairs.
func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a": 1}`, `{"a": 1}`},
		{"{\"a\": 1\n \"b\": [1 2,],\n}", `{"a":1,"b":[1,2]}`},
		{`{"a": {"b": 1}} "c": 2}`, `{"a":{"b":1},"c":2}`},
		{`{"a": {"b": 1}, "c": true} "d": {"e": 5}}`, `{"a":{"b":1},"c":true,"d":{"e":5}}`},
		{`{"s": "x\"}y"}`, `{"s": "x\"}y"}`},
	} {
		if got, ok := RepairJSON(tc.in); !ok || got != tc.want {
			t.Errorf("RepairJSON(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if got, ok := RepairJSON(`{"a": }`); ok {
		t.Errorf("RepairJSON of broken JSON = %q, want no repair", got)
	}

	words, err := ShellWords(`aws x --a 'b c' --d "e \"f\" ` + "`cat k.pem`" + `" g\ h --i=j`)
	want := []string{"aws", "x", "--a", "b c", "--d", `e "f" ` + BacktickMarker + "cat k.pem" + BacktickMarker, "g h", "--i=j"}
	if err != nil || !slices.Equal(words, want) {
		t.Errorf("ShellWords = %q, %v; want %q", words, err, want)
	}
	for _, bad := range []string{`a 'b`, `a "b`, "a $HOME", "a | b"} {
		if _, err := ShellWords(bad); err == nil {
			t.Errorf("ShellWords(%q): no error", bad)
		}
	}

	rst := "**Example 1: To do it**\n\nThe example. ::\n\n    aws ivs-realtime get-stage \\ \n        --arn '{\"x\": 1\n\n" +
		"Output::\n\n    {\n        \"stage\": {\"name\": \"s\"\n        \"tags\": {},}\n    }\n\nMore text.\n\n" +
		"**Example 2: Quiet**\n\nAnother. ::\n\n    aws ivs-realtime get-stage \\\n        --arn a\n\nThis command produces no output.\n"
	if _, err := Parse("get-stage.rst", rst); err == nil {
		t.Error("Parse accepted an unterminated quote")
	}
	rst = strings.Replace(rst, `'{"x": 1`, `'{"x": 1}'`, 1)
	exs, err := Parse("get-stage.rst", rst)
	if err != nil || len(exs) != 2 {
		t.Fatalf("Parse: %d examples, %v", len(exs), err)
	}
	if e := exs[0]; e.Title != "Example 1: To do it" || !slices.Equal(e.Args, []string{"ivs-realtime", "get-stage", "--arn", `{"x": 1}`}) ||
		!reflect.DeepEqual(e.Output, map[string]any{"stage": map[string]any{"name": "s", "tags": map[string]any{}}}) {
		t.Errorf("example 1: %+v", *e)
	}
	if e := exs[1]; e.Index != 2 || e.Output != nil || !slices.Equal(e.Args, []string{"ivs-realtime", "get-stage", "--arn", "a"}) {
		t.Errorf("example 2: %+v", *e)
	}
	if _, err := Parse("get-stage.rst", strings.ReplaceAll(rst, "get-stage \\", "list-stages \\")); err == nil {
		t.Error("Parse accepted a command of another operation")
	}
}
