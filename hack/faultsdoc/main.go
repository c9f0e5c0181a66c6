// Command faultsdoc renders the fault suite's records (docs/reliability.json, written by
// `make faults`) into docs/reliability.md, between its faults:begin and faults:end markers.
//
//	go run ./hack/faultsdoc docs/reliability.json docs/reliability.md
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

type record struct {
	Case     string             `json:"case"`
	Lost     string             `json:"lost"`
	Repeated string             `json:"repeated"`
	Figures  map[string]float64 `json:"figures"`
	Notes    string             `json:"notes"`
	Date     string             `json:"date"`
	Command  string             `json:"command"`
}

const begin, end = "<!-- faults:begin -->", "<!-- faults:end -->"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: faultsdoc RECORDS.json DOC.md")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "faultsdoc:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var records []record
	if err := json.Unmarshal(raw, &records); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	text := string(doc)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section", out, begin, end)
	}
	return os.WriteFile(out, []byte(text[:i+len(begin)]+"\n"+table(records)+text[j:]), 0o644)
}

func table(records []record) string {
	var b strings.Builder
	b.WriteString("\n| case | lost | repeated | figures | run |\n|---|---|---|---|---|\n")
	for _, r := range records {
		keys := make([]string, 0, len(r.Figures))
		for k := range r.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		figures := make([]string, len(keys))
		for i, k := range keys {
			figures[i] = fmt.Sprintf("%s: %.3g", k, r.Figures[k])
		}
		caseText := r.Case
		if r.Notes != "" {
			caseText += " (" + r.Notes + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s`, %s |\n", caseText, r.Lost, r.Repeated, strings.Join(figures, "; "), r.Command, r.Date)
	}
	return b.String() + "\n"
}
