// Package clidoc reads the examples of the AWS CLI's documentation: the
// reStructuredText files of "aws ivs-realtime" commands with their
// documented output. The documentation is written for people, so the
// reader repairs what a person would read past: JSON with missing or stray
// commas and brackets, lines continued with a backslash followed by a
// space.
package clidoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Example is one documented command and its documented output.
type Example struct {
	File   string
	Index  int // 1-based, within its file
	Title  string
	Args   []string // the shell words after "aws", before any substitution
	Output any      // the documented output; nil where the example prints nothing
	Notes  []string // repairs made to the command
}

var rstTitle = regexp.MustCompile(`^\*\*(.+)\*\*\s*$`)

// Parse reads the examples of one .rst file: each literal block (after a
// line ending in "::") that starts with "aws " is a command, and an
// "Output::" block is the output of the command before it. file is the
// file's name, such as get-stage.rst: its commands must run that operation.
func Parse(file, text string) ([]*Example, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var (
		out   []*Example
		title string
	)
	for i := 0; i < len(lines); i++ {
		if m := rstTitle.FindStringSubmatch(lines[i]); m != nil {
			title = m[1]
			continue
		}
		head := strings.TrimSpace(lines[i])
		if !strings.HasSuffix(head, "::") {
			continue
		}
		block, next := literalBlock(lines, i+1)
		i = next - 1
		switch {
		case strings.HasPrefix(block, "aws "):
			ex := &Example{File: file, Index: len(out) + 1, Title: title}
			if err := ex.parseCommand(block); err != nil {
				return nil, fmt.Errorf("example %d: %w", ex.Index, err)
			}
			out = append(out, ex)
		case head == "Output::":
			if len(out) == 0 {
				return nil, errors.New("an Output:: block before any command")
			}
			ex := out[len(out)-1]
			if err := json.Unmarshal([]byte(looseJSON(block)), &ex.Output); err != nil {
				return nil, fmt.Errorf("example %d: the output is not JSON, even repaired: %w", ex.Index, err)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no example command")
	}
	return out, nil
}

// literalBlock returns the dedented indented block starting at lines[from]
// (after blank lines) and the index of the first line after it.
func literalBlock(lines []string, from int) (string, int) {
	i := from
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	start := i
	for i < len(lines) && (strings.TrimSpace(lines[i]) == "" || lines[i][0] == ' ' || lines[i][0] == '\t') {
		i++
	}
	block := lines[start:i]
	indent := -1
	for _, l := range block {
		if strings.TrimSpace(l) != "" {
			n := len(l) - len(strings.TrimLeft(l, " \t"))
			if indent < 0 || n < indent {
				indent = n
			}
		}
	}
	var b strings.Builder
	for _, l := range block {
		if len(l) >= indent && indent >= 0 {
			l = l[indent:]
		}
		b.WriteString(strings.TrimRight(l, " \t"))
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String()), i
}

var continuation = regexp.MustCompile(`\\[ \t]*\n`)

// parseCommand splits the command like a shell would, joining the lines
// continued with a backslash (also inside quotes, as the examples mean it,
// and with a stray space after the backslash) and repairing JSON arguments
// that the documentation got wrong.
func (ex *Example) parseCommand(block string) error {
	joined := continuation.ReplaceAllString(block+"\n", " ")
	words, err := ShellWords(strings.TrimSpace(joined))
	if err != nil {
		return err
	}
	if len(words) < 3 || words[0] != "aws" || words[1] != "ivs-realtime" {
		return fmt.Errorf("not an aws ivs-realtime command: %q", joined)
	}
	if op := strings.TrimSuffix(ex.File, ".rst"); words[2] != op {
		return fmt.Errorf("the command runs %s, not %s", words[2], op)
	}
	for i, w := range words {
		if s := strings.TrimSpace(w); strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
			fixed, ok := RepairJSON(s)
			if !ok {
				return fmt.Errorf("argument %s is not JSON, and no simple repair makes it so", w)
			}
			if fixed != s {
				ex.Notes = append(ex.Notes, fmt.Sprintf("repaired the JSON of %s (missing or stray commas or brackets)",
					words[i-1]))
			}
			words[i] = fixed
		}
	}
	ex.Args = words[1:]
	return nil
}

// ShellWords splits a command line as sh does for the quoting the examples
// use: single and double quotes, backslash escapes, and `cat FILE`, which is
// kept as a marker for the replay to fill in.
func ShellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0:
					i++
					cur.WriteByte(s[i])
				case s[i] == '`':
					j := strings.IndexByte(s[i+1:], '`')
					if j < 0 {
						return nil, fmt.Errorf("unterminated ` in %q", s)
					}
					cur.WriteString(BacktickMarker + s[i+1:i+1+j] + BacktickMarker)
					i += j + 1
				case s[i] == '$':
					return nil, fmt.Errorf("shell expansion in %q is not supported", s)
				default:
					cur.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			in = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case c == '`' || c == '$' || c == '|' || c == ';' || c == '&' || c == '<' || c == '>':
			return nil, fmt.Errorf("shell syntax %q outside quotes in %q is not supported", c, s)
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// BacktickMarker brackets a command substitution inside a shell word.
const BacktickMarker = "\x00"

// looseJSON turns the near-JSON of the documentation into JSON: it adds the
// commas forgotten between members and elements, and drops trailing commas.
func looseJSON(s string) string {
	var (
		b        strings.Builder
		valueEnd bool // the last token ended a value (or a key)
		comma    bool // a comma is pending
	)
	startValue := func() {
		if comma || valueEnd {
			b.WriteByte(',')
		}
		comma, valueEnd = false, false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case c == ',':
			comma, valueEnd = true, false
		case c == '}' || c == ']':
			comma = false
			b.WriteByte(c)
			valueEnd = true
		case c == ':':
			b.WriteByte(c)
			valueEnd = false
		case c == '{' || c == '[':
			startValue()
			b.WriteByte(c)
		case c == '"':
			startValue()
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			b.WriteString(s[i:min(j+1, len(s))])
			i = j
			valueEnd = true
		default:
			startValue()
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n,:{}[]\"", s[j]) < 0 {
				j++
			}
			b.WriteString(s[i:j])
			i = j - 1
			valueEnd = true
		}
	}
	return b.String()
}

// RepairJSON returns s as valid JSON: as it is, with looseJSON's commas, or
// with one stray closing bracket removed. The stray bracket is looked for
// from the end: in the examples it closes an object too early, just before
// the members meant to be inside it.
func RepairJSON(s string) (string, bool) {
	if json.Valid([]byte(s)) {
		return s, true
	}
	if l := looseJSON(s); json.Valid([]byte(l)) {
		return l, true
	}
	var closers []int
	inString := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '}' || c == ']'):
			closers = append(closers, i)
		}
	}
	for _, i := range slices.Backward(closers) {
		if l := looseJSON(s[:i] + s[i+1:]); json.Valid([]byte(l)) {
			return l, true
		}
	}
	return "", false
}
