// Package serve is jmedseg's inference server: an HTTP API over trained
// models and a web page to look at their predictions.
//
// The API (see Server.Handler):
//
//	GET  /healthz                       {"status":"ok", ...}, without authentication
//	GET  /v1/models                     the models served: name, classes, input size, parameters, checkpoint
//	POST /v1/models/{name}/predict      an image body (PNG, JPEG, NPY, DICOM, NIfTI) → its mask
//	POST /v1/models/{name}/overlay      an image body → the image with its mask overlaid, PNG
//	GET  /v1/runs, /v1/runs/{run}/files/{path}   with Config.RunsDir: the runs and their reports
//	GET  /metrics                       Prometheus text format
//	GET  /                              the web page
//
// A body's format is taken from its Content-Type, else sniffed from its
// bytes. The mask comes back as the bytes `jmedseg predict` writes for the
// same input and checkpoint: a PNG of class ids by default, ?format=npy, a
// NIfTI label volume for a NIfTI input (?format=nifti, its default), or
// ?format=json (per-class pixel counts and areas in mm², the mask as base64
// PNG).
//
// Requests to one model are batched: a worker takes the first waiting image,
// waits up to Config.BatchWindow for more (up to Config.MaxBatch) and runs
// them through the model at once. At most Config.Queue prediction requests
// are admitted at a time (reading, decoding, waiting or running); more are
// answered 503 at once. Each request has Config.Timeout to be answered (504
// after it), a body of at most Config.MaxBody bytes (413) and an image of at
// most Config.MaxPixels pixels (413). A body that is not an image the
// readers take is a 400 naming the problem; an unknown model a 404.
//
// The package links models, data, infer and torch, and no training code.
package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
)

// Defaults of Config's limits.
const (
	DefaultMaxBatch    = 8
	DefaultBatchWindow = 5 * time.Millisecond
	DefaultQueue       = 64
	DefaultTimeout     = 60 * time.Second
	DefaultMaxBody     = 64 << 20
	DefaultMaxPixels   = 4096 * 4096
)

// Config is what a Server serves and how.
type Config struct {
	// Checkpoints are model files to serve, each PATH or NAME=PATH. A
	// model's name is NAME, else the run directory's name for a run's
	// best.safetensors or last.safetensors, else the file's stem.
	Checkpoints []string
	// Device runs the models.
	Device torch.Device
	// RunsDir, when set, is a directory of training runs the page lists.
	RunsDir string
	// MaxBatch is the most images run through a model at once (1: no
	// batching; at most infer.MaxBatch); 0 means DefaultMaxBatch.
	MaxBatch int
	// BatchWindow is how long a worker waits for more images after the
	// first of a batch; 0 takes only those already waiting.
	BatchWindow time.Duration
	// Workers is how many batches of one model run at once; 0 means 1.
	Workers int
	// Queue is the most prediction requests admitted at once; 0 means
	// DefaultQueue.
	Queue int
	// Timeout is how long a request may take; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBody is the largest request body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// MaxPixels is the largest 2D image in pixels; 0 means
	// DefaultMaxPixels.
	MaxPixels int64
	// Token, when set, is the bearer token every request but /healthz and
	// the page's own files must carry.
	Token string
	// Log receives one line per failed request and server events; nil
	// logs nothing.
	Log *log.Logger
	// Load is how the models run (infer.LoadOptions: folding, memory
	// layout, autocast, engine). With the jit engine a batch is padded up
	// to the next of a few batch sizes (Load.JITBatches, by default
	// JITBatches(MaxBatch)), whose modules New builds before it returns,
	// so that no request waits for a build.
	Load infer.LoadOptions
}

// JITBatches are the batch sizes a server of the given max batch builds
// the jit engine for: maxBatch, halved (rounding up) down to 1, and past
// infer.MaxJITShapes the largest ones and 1 (8: 1, 2, 4, 8; 16: 1, 4, 8,
// 16). A batch is padded with zero images up to the next size: at most
// about twice the work of its own images, against a build (several
// forwards) for each of maxBatch sizes.
func JITBatches(maxBatch int) []int {
	var s []int
	for n := max(maxBatch, 1); ; n = (n + 1) / 2 {
		s = append(s, n)
		if n == 1 {
			break
		}
	}
	if len(s) > infer.MaxJITShapes {
		s = append(s[:infer.MaxJITShapes-1], 1)
	}
	slices.Reverse(s)
	return s
}

// Server serves models over HTTP. Close it after the http.Server that
// uses its Handler has shut down.
type Server struct {
	cfg      Config
	models   map[string]*model
	names    []string
	admit    chan struct{} // admission: one slot per request admitted
	decoding chan struct{} // bodies decoded at once, to bound memory
	tmp      string        // request bodies the readers take by path
	metrics  *metrics
	handler  http.Handler
	close    sync.Once
}

// model is one served model.
type model struct {
	Name       string
	Checkpoint string
	info       models.Info
	params     int64
	p          *infer.Predictor
	b          *batcher
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ModelName returns the name and path a Config.Checkpoints entry gives.
func ModelName(arg string) (name, path string, err error) {
	if n, p, ok := strings.Cut(arg, "="); ok && nameRE.MatchString(n) && p != "" {
		return n, p, nil
	}
	path = arg
	base := filepathBase(path)
	if base == "best.safetensors" || base == "last.safetensors" {
		dir := filepathBase(strings.TrimSuffix(strings.TrimSuffix(path, base), "/"))
		if dir != "" && dir != "." && dir != "/" {
			name = dir
			if base == "last.safetensors" {
				name += "-last"
			}
		}
	}
	if name == "" {
		name = strings.TrimSuffix(base, ".safetensors")
	}
	if !nameRE.MatchString(name) {
		return "", "", fmt.Errorf("--checkpoint %s: the model name %q it gives is not a plain name (letters, digits, . _ -): give it one as NAME=PATH", arg, name)
	}
	return name, path, nil
}

func filepathBase(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// New loads the models of cfg and starts their batch workers.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, models: map[string]*model{}}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	s.admit = make(chan struct{}, cfg.Queue)
	s.decoding = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	s.metrics = newMetrics(cfg.MaxBatch)
	tmp, err := os.MkdirTemp("", "jmedseg-serve-")
	if err != nil {
		return nil, fmt.Errorf("serve: a directory for request bodies: %w", err)
	}
	s.tmp = tmp
	for _, arg := range cfg.Checkpoints {
		name, path, err := ModelName(arg)
		if err != nil {
			return nil, err
		}
		if old, dup := s.models[name]; dup {
			return nil, fmt.Errorf("--checkpoint %s and %s are both named %q: name one as NAME=PATH", old.Checkpoint, path, name)
		}
		m, err := s.load(name, path)
		if err != nil {
			return nil, err
		}
		s.models[name] = m
		s.names = append(s.names, name)
	}
	if len(s.models) == 0 {
		return nil, errors.New("serve: no --checkpoint to serve")
	}
	slices.Sort(s.names)
	s.handler = s.routes()
	ok = true
	return s, nil
}

// fill checks cfg and sets its defaults.
func (c *Config) fill() error {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	switch {
	case c.MaxBatch < 1 || c.MaxBatch > infer.MaxBatch:
		return fmt.Errorf("--max-batch %d: want 1 to %d", c.MaxBatch, infer.MaxBatch)
	case c.BatchWindow < 0 || c.BatchWindow > time.Second:
		return fmt.Errorf("--batch-window %s: want 0 to 1s", c.BatchWindow)
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("--workers %d: want 1 to 64", c.Workers)
	case c.Queue < 1 || c.Queue > 1<<16:
		return fmt.Errorf("--queue %d: want 1 to %d", c.Queue, 1<<16)
	case c.Timeout < 0:
		return fmt.Errorf("--timeout %s: want a positive duration", c.Timeout)
	case c.MaxBody < 1:
		return fmt.Errorf("--max-body %d: want 1 or more bytes", c.MaxBody)
	case c.MaxPixels < 1:
		return fmt.Errorf("--max-pixels %d: want 1 or more", c.MaxPixels)
	}
	if strings.EqualFold(c.Load.Engine, infer.EngineJIT) && len(c.Load.JITBatches) == 0 {
		c.Load.JITBatches = JITBatches(c.MaxBatch)
	}
	if c.RunsDir != "" {
		if st, err := os.Stat(c.RunsDir); err != nil || !st.IsDir() {
			return fmt.Errorf("--runs %s: not a directory", c.RunsDir)
		}
	}
	return nil
}

// load opens one model file.
func (s *Server) load(name, path string) (*model, error) {
	info, err := models.ReadInfo(path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint %s: %w", path, err)
	}
	if info.Kind == models.KindEncoder {
		return nil, fmt.Errorf("--checkpoint %s: a pretrained encoder, not a trained model (train with --pretrained %s first)", path, path)
	}
	// The parameter count, from an untrained build (cheap next to loading).
	net, err := models.Build(info)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint %s: %w", path, err)
	}
	params := net.NumParams()
	net.Free()
	p, err := infer.NewPredictorWith(path, s.cfg.Device, s.cfg.Load)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint %s: %w", path, err)
	}
	if sizes := s.cfg.Load.JITBatches; len(sizes) > 0 {
		// Built now, before the server listens: a build takes several
		// forwards per size, which a first request would otherwise wait
		// out (perhaps past its --timeout).
		s.logf("model %s: building the jit engine for batch sizes %v", name, sizes)
		start := time.Now()
		if err := p.Warm(sizes); err != nil {
			p.Close()
			return nil, fmt.Errorf("--checkpoint %s: building the jit engine: %w (serve it with --engine eager)", path, err)
		}
		s.logf("model %s: jit engine built in %.1fs", name, time.Since(start).Seconds())
	} else if s.cfg.Load.AutoLayout(s.cfg.Device) {
		// The automatic layout times both layouts on each batch size's
		// first input (four forwards): decided now, so that no request
		// waits for it.
		sizes := make([]int, s.cfg.MaxBatch)
		for i := range sizes {
			sizes[i] = i + 1
		}
		start := time.Now()
		if err := p.Warm(sizes); err != nil {
			p.Close()
			return nil, fmt.Errorf("--checkpoint %s: timing the memory layouts: %w", path, err)
		}
		s.logf("model %s: memory layout chosen for batch sizes 1 to %d in %.1fs (--layout contiguous skips this)", name, s.cfg.MaxBatch, time.Since(start).Seconds())
	}
	s.metrics.watchEngine(name, p)
	m := &model{Name: name, Checkpoint: path, info: p.Info(), params: params, p: p}
	m.b = newBatcher(p, s.cfg.MaxBatch, s.cfg.BatchWindow, s.cfg.Workers, s.cfg.Queue, s.metrics.forModel(name))
	return m, nil
}

// Names returns the served models' names, sorted.
func (s *Server) Names() []string { return slices.Clone(s.names) }

// Handler is the server's HTTP handler: the API, /metrics and the page.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the batch workers once the requests they hold are answered,
// frees the models and removes the server's temporary files. Requests
// after Close are answered 503.
func (s *Server) Close() {
	s.close.Do(func() {
		for _, m := range s.models {
			m.b.close()
			m.p.Close()
		}
		if s.tmp != "" {
			os.RemoveAll(s.tmp)
		}
	})
}

// routes builds the handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /v1/models", s.listModels)
	mux.HandleFunc("POST /v1/models/{name}/predict", s.predict)
	mux.HandleFunc("POST /v1/models/{name}/overlay", s.overlay)
	mux.HandleFunc("GET /v1/runs", s.listRuns)
	mux.HandleFunc("GET /v1/runs/{run}/files/{path...}", s.runFile)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range apiRoutes {
			if rt.path.MatchString(r.URL.Path) {
				w.Header().Set("Allow", rt.method)
				writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", r.URL.Path, rt.method, r.Method))
				return
			}
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	})
	pageRoutes(mux)
	return s.instrument(s.authenticate(mux))
}

// apiRoutes are the API's paths with their method, for the 405 of
// another method (the catch-all of /v1/ would answer 404 instead).
var apiRoutes = []struct {
	path   *regexp.Regexp
	method string
}{
	{regexp.MustCompile(`^/v1/models$`), "GET"},
	{regexp.MustCompile(`^/v1/models/[^/]+/(predict|overlay)$`), "POST"},
	{regexp.MustCompile(`^/v1/runs$`), "GET"},
	{regexp.MustCompile(`^/v1/runs/[^/]+/files/.+$`), "GET"},
}

// public paths need no token: the health check and the page's own files
// (they hold nothing but the page; its API calls carry the token).
func public(path string) bool {
	return path == "/healthz" || path == "/" || strings.HasPrefix(path, "/static/")
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !public(r.URL.Path) && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jmedseg"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer TOKEN, the token of --token-file)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// instrument counts and times every request, and turns a panic into a 500
// (logged with its stack) so that one bad request cannot stop the server.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logf("panic serving %s %s: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
				if !rec.wrote {
					writeError(rec, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			name := ""
			if _, ok := s.models[r.PathValue("name")]; ok {
				name = r.PathValue("name")
			}
			s.metrics.observe(route, name, rec.code(), time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Log != nil {
		s.cfg.Log.Printf(format, args...)
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Disposition")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Health is the answer of /healthz.
type Health struct {
	Status string   `json:"status"`
	Models []string `json:"models"`
	// Auth says whether the API wants a bearer token.
	Auth bool `json:"auth"`
	// Runs says whether the server lists runs (--runs).
	Runs bool `json:"runs"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, Health{Status: "ok", Models: s.names, Auth: s.cfg.Token != "", Runs: s.cfg.RunsDir != ""})
}

// ModelInfo describes a served model (GET /v1/models).
type ModelInfo struct {
	Name       string    `json:"name"`
	Model      string    `json:"model"`
	Classes    []string  `json:"classes"`
	InChannels int64     `json:"in_channels"`
	Width      int64     `json:"width"`
	Size       [2]int    `json:"input_size"` // H, W
	Params     int64     `json:"parameters"`
	Checkpoint string    `json:"checkpoint"`
	STN        bool      `json:"stn"`
	Spacing    []float64 `json:"pixel_spacing_mm,omitempty"`
	Epoch      int       `json:"epoch,omitempty"`
	ValDice    float64   `json:"val_foreground_dice,omitempty"`
}

func (m *model) describe() ModelInfo {
	return ModelInfo{Name: m.Name, Model: m.info.Model, Classes: classNames(m.info), InChannels: m.info.Config.InChannels,
		Width: m.info.Config.Width, Size: m.info.Size, Params: m.params, Checkpoint: m.Checkpoint, STN: m.info.STN,
		Spacing: m.info.Spacing, Epoch: m.info.Epoch, ValDice: m.info.ValDice}
}

// classNames are the model's class names, "class N" where it has none.
func classNames(info models.Info) []string {
	n := max(int(info.Config.Classes), len(info.Classes))
	out := make([]string, n)
	for i := range out {
		if i < len(info.Classes) && info.Classes[i] != "" {
			out[i] = info.Classes[i]
		} else {
			out[i] = fmt.Sprintf("class %d", i)
		}
	}
	return out
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	out := make([]ModelInfo, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.models[n].describe())
	}
	writeJSON(w, out)
}

// lookup finds the model of a request, answering 404 when there is none.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *model {
	name := r.PathValue("name")
	m, ok := s.models[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no model %q: this server has %s", name, strings.Join(s.names, ", ")))
		return nil
	}
	return m
}

// admitted takes an admission slot, or answers 503 when none is free.
func (s *Server) admitted(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case s.admit <- struct{}{}:
		s.metrics.admitted.Inc()
		return func() { s.metrics.admitted.Dec(); <-s.admit }, true
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("server busy: %d requests under way (--queue %d); retry later", s.cfg.Queue, s.cfg.Queue))
		return nil, false
	}
}

// Shutdown is the graceful end of srv and s together: srv stops taking
// connections and waits, up to ctx, for the requests under way to be
// answered; then s closes. It returns srv.Shutdown's error.
func Shutdown(ctx context.Context, srv *http.Server, s *Server) error {
	err := srv.Shutdown(ctx)
	s.Close()
	return err
}
