package bev_test

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The Go code shown in the documentation is copied from compiled, tested
// programs, and TestDocSnippets keeps the copies true. In a .go file, a
// region between a line "// snippet:NAME" and a line "// snippet:end" is a
// snippet; every Go code block of the documents below must equal one
// snippet, line for line, once both have lost their common indentation.
// A snippet named in a document's "<!-- snippet:NAME -->" comment just
// before the block (Markdown) must be that one.

// snippetDocs are the documents whose Go code blocks must be snippets.
var snippetDocs = []string{"README.md", "doc.go", "docs/tutorial.md", "docs/tutorial-toxics.md", "docs/design.md"}

// docBlock is one Go code block of a document.
type docBlock struct {
	where string // file:line of the block's first line
	name  string // the snippet it names, or ""
	text  string // normalised
}

func TestDocSnippets(t *testing.T) {
	snippets, err := collectSnippets(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(snippets) == 0 {
		t.Fatal("no snippet regions found under the repository")
	}
	for _, doc := range snippetDocs {
		blocks, err := docBlocks(doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(blocks) == 0 && doc != "docs/design.md" {
			t.Errorf("%s has no Go code block; expected at least one", doc)
		}
		for _, b := range blocks {
			if err := matchBlock(b, snippets); err != "" {
				t.Errorf("%s: %s", b.where, err)
			}
		}
	}
}

// TestSnippetMatcher checks the checker: a drifted block, an unknown name
// and an unterminated region are all caught, and indentation is ignored.
func TestSnippetMatcher(t *testing.T) {
	src := "package x\n\nfunc f() {\n\t// snippet:a\n\tx := 1\n\tif x > 0 {\n\t\tx++\n\t}\n\t// snippet:end\n}\n"
	snippets, err := parseSnippets("x.go", src)
	if err != nil {
		t.Fatal(err)
	}
	md := "text\n\n<!-- snippet:a -->\n```go\nx := 1\nif x > 0 {\n\tx++\n}\n```\n\n```go\nx := 2\n```\n\n<!-- snippet:b -->\n```go\nx := 1\nif x > 0 {\n\tx++\n}\n```\n"
	blocks := markdownBlocks("x.md", md)
	if len(blocks) != 3 {
		t.Fatalf("markdownBlocks found %d blocks, want 3", len(blocks))
	}
	if e := matchBlock(blocks[0], snippets); e != "" {
		t.Errorf("matching block = %q, want a match", e)
	}
	if e := matchBlock(blocks[1], snippets); e == "" {
		t.Errorf("drifted block matched a snippet")
	}
	if e := matchBlock(blocks[2], snippets); e == "" {
		t.Errorf("block naming an unknown snippet matched")
	}
	if _, err := parseSnippets("y.go", "// snippet:a\nx := 1\n"); err == nil {
		t.Errorf("an unterminated region gave no error")
	}
	doc := "// Package x.\n//\n//\tx := 1\n//\tif x > 0 {\n//\t\tx++\n//\t}\n//\n// More.\npackage x\n"
	gblocks, err := goDocBlocks("x.go", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(gblocks) != 1 || matchBlock(gblocks[0], snippets) != "" {
		t.Errorf("goDocBlocks = %+v, want one block matching snippet a", gblocks)
	}
}

// matchBlock returns "" when b equals a snippet (the one it names, if
// any), or says what is wrong.
func matchBlock(b docBlock, snippets map[string]string) string {
	if b.name != "" {
		s, ok := snippets[b.name]
		switch {
		case !ok:
			return "names snippet " + b.name + ", which no .go file marks"
		case s != b.text:
			return "differs from snippet " + b.name + ":\n" + b.text + "\n--- snippet ---\n" + s
		}
		return ""
	}
	for _, s := range snippets {
		if s == b.text {
			return ""
		}
	}
	return "Go code block is no compiled snippet (mark its source with // snippet:NAME … // snippet:end):\n" + b.text
}

// collectSnippets reads the snippet regions of every .go file under root.
func collectSnippets(root string) (map[string]string, error) {
	all := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found, err := parseSnippets(path, string(src))
		for name, text := range found {
			all[name] = text
		}
		return err
	})
	return all, err
}

// parseSnippets returns the regions of src marked "// snippet:NAME" …
// "// snippet:end", normalised, by name.
func parseSnippets(path, src string) (map[string]string, error) {
	out := map[string]string{}
	var name string
	var lines []string
	for i, line := range strings.Split(src, "\n") {
		tag, ok := strings.CutPrefix(strings.TrimSpace(line), "// snippet:")
		switch {
		case ok && tag == "end" && name != "":
			out[name] = normalise(lines)
			name, lines = "", nil
		case ok && tag != "end" && name == "":
			name = tag
		case ok:
			return nil, fmt.Errorf("%s:%d: misplaced snippet marker %q", path, i+1, tag)
		case name != "":
			lines = append(lines, line)
		}
	}
	if name != "" {
		return nil, fmt.Errorf("%s: snippet %s has no // snippet:end", path, name)
	}
	return out, nil
}

// docBlocks returns the Go code blocks of a Markdown file or of a Go
// file's package comment.
func docBlocks(path string) ([]docBlock, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".go") {
		return goDocBlocks(path, string(src))
	}
	return markdownBlocks(path, string(src)), nil
}

// markdownBlocks returns the ```go fenced blocks of a Markdown text, each
// with the snippet name of an HTML comment on the line before its fence.
func markdownBlocks(path, src string) []docBlock {
	var blocks []docBlock
	var cur *docBlock
	var body []string
	prev := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```go":
			cur = &docBlock{where: path + ":" + strconv.Itoa(n)}
			if tag, ok := strings.CutPrefix(prev, "<!-- snippet:"); ok {
				cur.name = strings.TrimSpace(strings.TrimSuffix(tag, "-->"))
			}
		case cur != nil && trimmed == "```":
			cur.text = normalise(body)
			blocks = append(blocks, *cur)
			cur, body = nil, nil
		case cur != nil:
			body = append(body, line)
		}
		prev = trimmed
	}
	return blocks
}

// goDocBlocks returns the code blocks (tab-indented runs) of a Go file's
// package comment.
func goDocBlocks(path, src string) ([]docBlock, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil || f.Doc == nil {
		return nil, err
	}
	var blocks []docBlock
	var body []string
	flush := func() {
		if len(body) > 0 {
			blocks = append(blocks, docBlock{where: path, text: normalise(body)})
		}
		body = nil
	}
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		switch {
		case strings.HasPrefix(line, "\t"): // gofmt indents code with a tab, lists with spaces
			body = append(body, line)
		case line == "" && len(body) > 0:
			body = append(body, line) // a blank line inside a block, or its end
		default:
			flush()
		}
	}
	flush()
	return blocks, nil
}

// normalise drops trailing spaces and leading and trailing blank lines,
// and removes the indentation every non-blank line shares.
func normalise(lines []string) string {
	var out []string
	for _, l := range lines {
		out = append(out, strings.TrimRight(l, " \t"))
	}
	for len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	prefix := ""
	first := true
	for _, l := range out {
		if l == "" {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = indent, false
		}
		for !strings.HasPrefix(indent, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	for i, l := range out {
		out[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.Join(out, "\n")
}
