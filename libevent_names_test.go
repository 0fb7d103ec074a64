package bev_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// libeventNames is every public name of libevent 2.1's event2/bufferevent.h
// (with the TLS ones of event2/bufferevent_ssl.h), one a line.
const libeventNames = "docs/testdata/libevent-names.txt"

// libeventDoc is the mapping from libevent's names to bev's; the
// docs/libevent-*.md pages it links to count as part of it.
const libeventDoc = "docs/libevent.md"

// TestLibeventNamesDocumented keeps docs/libevent.md true to its promise,
// every libevent bufferevent name with its bev counterpart or why there is
// none: it fails naming each listed name that neither the page nor a
// docs/libevent-*.md page it links to mentions as a whole word.
func TestLibeventNamesDocumented(t *testing.T) {
	names, err := readNames(libeventNames)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 50 {
		t.Fatalf("%s lists %d names; libevent's header has about 90", libeventNames, len(names))
	}
	text, pages, err := libeventDocText(libeventDoc)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 2 {
		t.Errorf("%s links to no docs/libevent-*.md page; read only %v", libeventDoc, pages)
	}
	missing := undocumentedNames(names, text)
	for _, n := range missing {
		t.Errorf("%s is listed in %s but mentioned in none of %v", n, libeventNames, pages)
	}
}

// TestUndocumentedNames checks the checker: a name counts only as a whole
// word, so bufferevent_socket_connect is not found in
// bufferevent_socket_connect_hostname.
func TestUndocumentedNames(t *testing.T) {
	text := "| `bufferevent_socket_connect_hostname` | x |\n| `BEV_OK` | y |\nbufferevent_free."
	got := undocumentedNames([]string{"BEV_OK", "bufferevent_socket_connect", "bufferevent_free", "BEV_ERROR"}, text)
	want := []string{"bufferevent_socket_connect", "BEV_ERROR"}
	if !slices.Equal(got, want) {
		t.Errorf("undocumentedNames = %v, want %v", got, want)
	}
}

// readNames returns the names listed in path, one a line; blank lines and
// lines starting with # are skipped.
func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names = append(names, line)
	}
	return names, sc.Err()
}

// linkedPage matches a mention of another libevent-*.md page, as a link
// target or a path in backquotes.
var linkedPage = regexp.MustCompile(`libevent-[a-z0-9-]+\.md`)

// libeventDocText returns the text of the page at path and of every
// docs/libevent-*.md page it mentions, and the pages read. A page it
// mentions that does not exist is an error.
func libeventDocText(path string) (string, []string, error) {
	main, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	pages := []string{path}
	var text strings.Builder
	text.Write(main)
	for _, name := range linkedPage.FindAllString(string(main), -1) {
		p := filepath.Join(filepath.Dir(path), name)
		if slices.Contains(pages, p) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", nil, err
		}
		pages = append(pages, p)
		text.WriteString("\n")
		text.Write(b)
	}
	return text.String(), pages, nil
}

// undocumentedNames returns the names, in their order, that text does not
// mention as a whole word (letters, digits and _ on neither side).
func undocumentedNames(names []string, text string) []string {
	var missing []string
	for _, n := range names {
		re := regexp.MustCompile(`(^|[^A-Za-z0-9_])` + regexp.QuoteMeta(n) + `($|[^A-Za-z0-9_])`)
		if !re.MatchString(text) {
			missing = append(missing, n)
		}
	}
	return missing
}
