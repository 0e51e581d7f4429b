package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Run is a training run of Config.RunsDir (GET /v1/runs): a directory with
// a report.md or report.json.
type Run struct {
	Name     string `json:"name"`
	Title    string `json:"title,omitempty"`
	Headline string `json:"headline,omitempty"`
	Model    string `json:"model,omitempty"`
	Report   bool   `json:"report_md"` // has report.md
	// Checkpoint is the run's best.safetensors, when it has one.
	Checkpoint bool `json:"best_checkpoint"`
}

// runFiles are the extensions of the run files the page may fetch: the
// report and its figures, never the checkpoints.
var runFiles = map[string]string{
	".md": "text/markdown; charset=utf-8", ".json": "application/json", ".png": "image/png",
	".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".txt": "text/plain; charset=utf-8",
	".csv": "text/csv; charset=utf-8",
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RunsDir == "" {
		writeError(w, http.StatusNotFound, "this server lists no runs (start it with --runs DIR)")
		return
	}
	runs, err := listRuns(s.cfg.RunsDir)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, runs)
}

// rootRun names the runs directory itself when it is a run.
const rootRun = "_"

// listRuns lists the runs of dir: dir itself (named rootRun) when it is
// one, and each directory below it that is one.
func listRuns(dir string) ([]Run, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--runs %s: %w", dir, err)
	}
	out := []Run{}
	if r, ok := readRun(dir, rootRun); ok {
		out = append(out, r)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == rootRun {
			continue
		}
		if r, ok := readRun(filepath.Join(dir, e.Name()), e.Name()); ok {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Run) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readRun(dir, name string) (Run, bool) {
	r := Run{Name: name}
	r.Report = isFile(filepath.Join(dir, "report.md"))
	r.Checkpoint = isFile(filepath.Join(dir, "best.safetensors"))
	f, err := os.Open(filepath.Join(dir, "report.json"))
	if err != nil {
		return r, r.Report
	}
	defer f.Close()
	var rep struct {
		Title    string `json:"title"`
		Headline string `json:"headline"`
		Model    string `json:"model"`
	}
	// The head fields only; a report's per-image results can be large.
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&rep); err == nil {
		r.Title, r.Headline, r.Model = rep.Title, rep.Headline, rep.Model
	}
	return r, true
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// runFile answers one file of a run, read through an os.Root of the runs
// directory: nothing outside it (no "..", no link out) can be read.
func (s *Server) runFile(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RunsDir == "" {
		writeError(w, http.StatusNotFound, "this server lists no runs (start it with --runs DIR)")
		return
	}
	run, rel := r.PathValue("run"), r.PathValue("path")
	if run == "." || run == ".." || strings.ContainsAny(run, `/\`) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("run %q: want a run name from /v1/runs", run))
		return
	}
	dir := run
	if run == rootRun {
		dir = "."
	}
	name := path.Clean(path.Join(dir, rel))
	ct, ok := runFiles[strings.ToLower(path.Ext(name))]
	if !ok {
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s: the page serves a run's reports and figures only (%s)", rel, strings.Join(sortedKeys(runFiles), " ")))
		return
	}
	root, err := os.OpenRoot(s.cfg.RunsDir)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		code := http.StatusNotFound
		if !errors.Is(err, fs.ErrNotExist) {
			code = http.StatusForbidden
		}
		writeError(w, code, fmt.Sprintf("%s of run %s: %v", rel, run, trimRoot(err, s.cfg.RunsDir)))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s of run %s: not a file", rel, run))
		return
	}
	w.Header().Set("Content-Type", ct)
	// An SVG opened on its own runs no script.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func trimRoot(err error, root string) string {
	return strings.ReplaceAll(err.Error(), root, "")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
