// Command benchcmp runs `jmedseg bench` and its PyTorch twin (bench/bench.py)
// side by side on the same libtorch, with the same threads, batch, size and
// width, and writes the comparison as markdown and JSON.
//
//	go run ./bench/cmd/benchcmp [-plan default|quick|perf|perf512|gpu|zoo|cost] [-modes train,infer] [-trick-names fused,jit] [-reps N] [-only REGEXP] [-width N] [-mem-budget MiB] [-tricks] [-out bench/results] [-name cpu]
//
// -plan cost is the cost curve: unet at 128², 256² and 512², batch 1 to
// 16, both modes; besides the table it writes NAME-{train,infer}-{seconds,peak}.png
// (NAME defaults to cost) with a line per side and size against the batch.
//
// Every (row, mode, side, repetition) runs in its own process, so the peak
// resident memory (VmHWM) is that configuration's alone. OMP_NUM_THREADS and
// MKL_NUM_THREADS are set to the row's thread count for both sides, which
// also pass it as --threads. Go and PyTorch runs alternate (the side that
// goes first flips from one run to the next) and a row reports the median of
// its repetitions' per-run medians. The raw JSON of every run is kept under
// OUT/raw/NAME/.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/models"
)

// twinOf is a registered model's PyTorch twin ("module.Class"), which
// bench.py times.
func twinOf(model string) string {
	s, ok := models.Lookup(model)
	if !ok {
		log.Fatalf("benchcmp: unknown model %q", model)
	}
	return s.Twin
}

// row is one benchmarked configuration (both modes, both sides).
type row struct {
	Model   string `json:"model"`
	Batch   int    `json:"batch"`
	Size    int    `json:"size"`
	Width   int64  `json:"width"`
	Threads int    `json:"threads"`
	Steps   int    `json:"steps"`
	Warmup  int    `json:"warmup"`
}

func (r row) key() string {
	return fmt.Sprintf("%s-b%d-s%d-w%d-t%d", r.Model, r.Batch, r.Size, r.Width, r.Threads)
}

// plans: the default fits `make bench` into about a quarter of an hour on
// the project's 2-core machine: every model at its reference width at
// 128×128 with both cores, unet also single-threaded and at 256×256; fewer
// steps where one step takes seconds.
var plans = map[string][]row{
	"default": {
		{"unet", 4, 128, 64, 1, 5, 2},
		{"unet", 4, 128, 64, 2, 5, 2},
		{"unet", 4, 256, 64, 1, 3, 1},
		{"unet", 4, 256, 64, 2, 3, 1},
		{"attunet", 4, 128, 64, 2, 3, 1},
		{"deeplab", 4, 128, 64, 2, 3, 1},
		{"setr", 4, 128, 1024, 2, 3, 1},
	},
	// perf: the inference goal rows (unet and deeplab, batch 1 and
	// 8) at 128², for -tricks on a CPU.
	"perf": {
		{"unet", 1, 128, 64, 2, 5, 2},
		{"unet", 8, 128, 64, 2, 3, 1},
		{"deeplab", 1, 128, 64, 2, 5, 2},
		{"deeplab", 8, 128, 64, 2, 3, 1},
	},
	// gpu: scripts/gpu-check.sh's rows (-device cuda -tricks), sized so
	// that both sides and every trick fit its few minutes on one GPU.
	"gpu": {
		{"unet", 8, 256, 64, 4, 10, 3},
		{"deeplab", 8, 256, 64, 4, 10, 3},
	},
	// perf512: the inference goal's 512² rows (-modes infer), fewer steps.
	"perf512": {
		{"unet", 1, 512, 64, 2, 3, 1},
		{"unet", 8, 512, 64, 2, 2, 1},
		{"deeplab", 1, 512, 64, 2, 3, 1},
		{"deeplab", 8, 512, 64, 2, 2, 1},
	},
	// cost: the cost curve (costPlan).
	"cost": costPlan(),
	"quick": {
		{"unet", 2, 64, 16, 1, 5, 2},
		{"attunet", 2, 64, 16, 1, 5, 2},
		{"deeplab", 2, 64, 8, 1, 5, 2},
		{"setr", 2, 64, 128, 1, 5, 2},
	},
}

// costPlan is unet at its reference width at 128², 256² and 512², batch 1,
// 2, 4, 8 and 16, both cores, with fewer steps as a step gets dearer: step
// time and peak memory against batch and size.
func costPlan() []row {
	var out []row
	for _, size := range []int{128, 256, 512} {
		for _, b := range []int{1, 2, 4, 8, 16} {
			steps, warmup := 5, 2
			switch work := b * size * size / (128 * 128); {
			case work >= 64:
				steps, warmup = 2, 1
			case work >= 8:
				steps, warmup = 3, 1
			}
			out = append(out, row{"unet", b, size, 64, 2, steps, warmup})
		}
	}
	return out
}

// zooPlan is a row for every registered model at a quarter of its
// reference width (at least its test width), batch 2, 128×128 (or the
// nearest size the model takes), both cores: minutes per model on the
// project's machine.
func zooPlan() []row {
	var out []row
	for _, name := range models.Names() {
		s, _ := models.Lookup(name)
		// A multiple of the test width keeps the divisibility a model's
		// width needs (u2net's 4, onenet's 16).
		w := max(s.DefaultWidth/4/s.TestWidth*s.TestWidth, s.TestWidth)
		size := max(int64(128), s.MinSide())
		if m := s.Multiple; m > 1 {
			size = (size + m - 1) / m * m
		}
		out = append(out, row{name, 2, int(size), w, 2, 3, 1})
	}
	return out
}

// run is one process's figures (the keys both sides print).
type run struct {
	Model      string    `json:"model"`
	Mode       string    `json:"mode"`
	Params     int64     `json:"params"`
	Batch      int       `json:"batch"`
	Size       int       `json:"size"`
	Width      int64     `json:"width"`
	Threads    int       `json:"threads"`
	StepMedian float64   `json:"step_seconds_median"`
	PeakRSS    int64     `json:"peak_rss_bytes"`
	Steps      []float64 `json:"step_seconds"`
	Libtorch   string    `json:"libtorch"`
	Build      float64   `json:"engine_build_seconds"`
}

// side is one side's result for one mode: medians over repetitions.
type side struct {
	Seconds  float64   `json:"step_seconds_median"`
	PeakMiB  float64   `json:"peak_rss_mib"`
	Params   int64     `json:"params"`
	Runs     []float64 `json:"run_medians"`
	PeakRuns []float64 `json:"run_peaks_mib"`
	// Build is the median build time of an engine (Go --engine jit,
	// PyTorch --ofi): trace, freeze, optimise, first run.
	Build float64 `json:"engine_build_seconds,omitempty"`
	Error string  `json:"error,omitempty"`
}

// result is one row of the table.
type result struct {
	row
	Params int64            `json:"params"`
	Modes  map[string]*pair `json:"modes"`
	// Tricks holds, per trick and mode, Go with the trick against PyTorch
	// with its counterpart.
	Tricks map[string]map[string]*pair `json:"tricks,omitempty"`
}

// pair holds both sides of one mode.
type pair struct {
	Go      side     `json:"go"`
	PyTorch side     `json:"pytorch"`
	Ratio   float64  `json:"ratio"`     // Go seconds / PyTorch seconds
	MemDiff float64  `json:"mem_ratio"` // Go peak / PyTorch peak
	GoArgs  []string `json:"go_flags,omitempty"`
	PyArgs  []string `json:"pytorch_flags,omitempty"`
}

// report is the JSON file.
type report struct {
	Date     string    `json:"date"`
	Machine  string    `json:"machine"`
	Device   string    `json:"device"`
	Libtorch string    `json:"libtorch"`
	Go       string    `json:"go"`
	Plan     string    `json:"plan"`
	Reps     int       `json:"reps"`
	LoadAvg  [2]string `json:"load_average_start_end"`
	Minutes  float64   `json:"minutes"`
	Command  string    `json:"command"`
	Tricks   []trick   `json:"tricks,omitempty"`
	Rows     []*result `json:"rows"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("benchcmp: ")
	bin := flag.String("bin", "bin/jmedseg", "the jmedseg binary")
	python := flag.String("python", "/usr/bin/python3", "the Python with PyTorch on the same libtorch")
	script := flag.String("script", "bench/bench.py", "the PyTorch twin of jmedseg bench")
	out := flag.String("out", "bench/results", "output folder")
	name := flag.String("name", "cpu", "result name: OUT/NAME.md, OUT/NAME.json, OUT/raw/NAME/ (plan cost: cost unless given)")
	planName := flag.String("plan", "default", "rows to run: default, quick, perf (unet and deeplab, batch 1 and 8), gpu (for -device cuda), zoo (every registered model) or cost (unet at 128², 256², 512², batch 1 to 16, with figures)")
	width := flag.Int64("width", 0, "run every row at this model width (0: the plan's), for a quick try of a plan")
	reps := flag.Int("reps", 1, "processes per side, mode and row (median reported)")
	memBudget := flag.Float64("mem-budget", 0, "skip a row whose peak memory, scaled from a smaller batch of the same size, would exceed this many MiB (0: two thirds of the machine's memory)")
	only := flag.String("only", "", "run only rows whose key (model-bB-sS-wW-tT) matches this regexp")
	device := flag.String("device", "cpu", "cpu or cuda, for both sides")
	trickNames := flag.String("trick-names", "", "with -tricks: only these tricks, comma-separated (e.g. fused,jit)")
	modes := flag.String("modes", "train,infer", "the modes to time, comma-separated")
	withTricks := flag.Bool("tricks", false, "also time each trick (fused, channels-last, bf16; on CUDA graphs and fp16) against PyTorch eager and PyTorch with its counterpart")
	flag.Parse()
	plans["zoo"] = zooPlan()
	plan, ok := plans[*planName]
	if !ok {
		log.Fatalf("unknown plan %q", *planName)
	}
	if *width < 0 {
		log.Fatalf("-width %d: want 0 (the plan's) or more", *width)
	}
	if *width > 0 {
		plan = append([]row(nil), plan...)
		for i := range plan {
			plan[i].Width = *width
		}
	}
	nameSet := false
	flag.Visit(func(f *flag.Flag) { nameSet = nameSet || f.Name == "name" })
	if *planName == "cost" && !nameSet {
		*name = "cost"
	}
	var re *regexp.Regexp
	if *only != "" {
		re = regexp.MustCompile(*only)
	}
	rawDir := filepath.Join(*out, "raw", *name)
	if err := os.MkdirAll(rawDir, 0o755); err != nil {
		log.Fatal(err)
	}
	rep := &report{Date: time.Now().Format("2006-01-02"), Machine: machine(), Device: *device, Go: runtime.Version(),
		Plan: *planName, Reps: *reps, Command: strings.Join(append([]string{"go run ./bench/cmd/benchcmp"}, os.Args[1:]...), " ")}
	rep.LoadAvg[0] = loadavg()
	start := time.Now()
	cfg.bin, cfg.python, cfg.script, cfg.device, cfg.rawDir, cfg.reps = *bin, *python, *script, *device, rawDir, *reps
	for _, m := range strings.Split(*modes, ",") {
		if m != "train" && m != "infer" {
			log.Fatalf("-modes %q: want train, infer or train,infer", *modes)
		}
	}
	var tricks []trick
	if *withTricks {
		tricks = trickSets(*device)
		if *trickNames != "" {
			want := strings.Split(*trickNames, ",")
			tricks = slices.DeleteFunc(tricks, func(t trick) bool { return !slices.Contains(want, t.Name) })
			if len(tricks) != len(want) {
				log.Fatalf("-trick-names %q: the tricks are fused, channels-last, jit, bf16, direct, no-cache (CUDA: graphs, bf16+graphs, fp16)", *trickNames)
			}
		}
		rep.Tricks = tricks
	}
	budget := *memBudget
	if budget == 0 {
		budget = memBudgetMiB()
	}
	peaks := map[string]measuredPeak{}
	for _, r := range plan {
		if re != nil && !re.MatchString(r.key()) {
			continue
		}
		res := &result{row: r, Modes: map[string]*pair{}}
		for _, mode := range []string{"train", "infer"} {
			if !slices.Contains(strings.Split(*modes, ","), mode) {
				continue
			}
			if spec, _ := models.Lookup(r.Model); mode == "train" && int64(r.Batch) < max(spec.MinTrainBatch, 1) {
				// Batch statistics of one image: PyTorch refuses a 1×1
				// map (deeplab's image pooling), so no training row.
				continue
			}
			pk := peakKey(r, mode)
			if est, ok := peaks[pk].estimate(r.Batch); ok && budget > 0 && est > budget {
				// Peak memory grows with the batch: a row that would not
				// fit is reported, not run into the OOM killer.
				why := fmt.Sprintf("not run: an estimated %.1f GiB (batch %d peaked %.0f MiB) is over the %.1f GiB budget", est/1024, peaks[pk].batch, peaks[pk].mib, budget/1024)
				log.Printf("%s %s: %s", r.key(), mode, why)
				res.Modes[mode] = &pair{Go: side{Error: why}, PyTorch: side{Error: why}}
				continue
			}
			p := measure(r, mode, nil, nil)
			if m := max(p.Go.PeakMiB, p.PyTorch.PeakMiB); m > 0 {
				peaks[pk] = measuredPeak{batch: r.Batch, mib: m}
			}
			if res.Params == 0 {
				res.Params = p.Go.Params
			}
			res.Modes[mode] = p
			for _, tr := range tricks {
				goArgs, pyArgs := tr.args(mode)
				if goArgs == nil {
					continue
				}
				if res.Tricks == nil {
					res.Tricks = map[string]map[string]*pair{}
				}
				if res.Tricks[tr.Name] == nil {
					res.Tricks[tr.Name] = map[string]*pair{}
				}
				res.Tricks[tr.Name][mode] = measure(r, mode, goArgs, pyArgs)
			}
		}
		rep.Rows = append(rep.Rows, res)
		// After every row, so that a run cut short keeps what it measured.
		rep.Libtorch, rep.LoadAvg[1], rep.Minutes = cfg.libtorch, loadavg(), time.Since(start).Minutes()
		if err := write(*out, *name, rep); err != nil {
			log.Fatal(err)
		}
	}
	rep.Libtorch = cfg.libtorch
	rep.LoadAvg[1] = loadavg()
	rep.Minutes = time.Since(start).Minutes()
	if err := write(*out, *name, rep); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s and %s (%.1f min)", filepath.Join(*out, *name+".md"), filepath.Join(*out, *name+".json"), rep.Minutes)
}

// measure runs one mode of row r, Go against PyTorch, with extra flags for
// each side (a trick), -reps times per side, alternating.
func measure(r row, mode string, goExtra, pyExtra []string) *pair {
	p := &pair{GoArgs: goExtra, PyArgs: pyExtra}
	var goRuns, pyRuns []run
	var goErr, pyErr error
	tag := strings.Join(append(append([]string{}, goExtra...), pyExtra...), "")
	tag = strings.NewReplacer("-", "", " ", "").Replace(tag)
	// A trick with PyTorch's flags of an earlier column (direct, no-cache)
	// is timed against that column's PyTorch runs, not rerun.
	pyKey := r.key() + " " + mode + " " + strings.Join(pyExtra, " ")
	pyPrev, reuse := pyDone[pyKey]
	for i := 0; i < cfg.reps; i++ {
		order := []string{"go", "pytorch"}
		if runCount%2 == 1 {
			order = []string{"pytorch", "go"}
		}
		runCount++
		for _, s := range order {
			if s == "pytorch" && reuse {
				continue
			}
			var args []string
			cmd := cfg.bin
			if s == "pytorch" {
				cmd, args = cfg.python, []string{cfg.script}
			}
			args = append(args, "bench", "--model", r.Model, "--batch", itoa(r.Batch), "--size", itoa(r.Size),
				"--width", strconv.FormatInt(r.Width, 10), "--steps", itoa(r.Steps), "--warmup", itoa(r.Warmup),
				"--mode", mode, "--threads", itoa(r.Threads), "--device", cfg.device, "--json")
			if s == "pytorch" {
				args = append(args[:1], args[2:]...) // bench.py takes no subcommand
				args = append(args, "--twin", twinOf(r.Model))
				args = append(args, pyExtra...)
			} else {
				args = append(args, goExtra...)
			}
			name := fmt.Sprintf("%s-%s-%s-%d.json", r.key(), mode, s, i)
			if tag != "" {
				name = fmt.Sprintf("%s-%s-%s-%s-%d.json", r.key(), mode, tag, s, i)
			}
			got, err := exec1(cmd, args, r.Threads, filepath.Join(cfg.rawDir, name))
			extra := goExtra
			if s == "pytorch" {
				extra = pyExtra
			}
			log.Printf("%-28s %-5s %-7s %-22s rep %d: %s", r.key(), mode, s, strings.Join(extra, " "), i, describe(got, err))
			if s == "go" {
				if err != nil {
					goErr = err
				} else {
					goRuns = append(goRuns, got)
				}
			} else if err != nil {
				pyErr = err
			} else {
				pyRuns = append(pyRuns, got)
			}
		}
	}
	p.Go = summarise(goRuns, goErr)
	if reuse {
		p.PyTorch = pyPrev
	} else {
		p.PyTorch = summarise(pyRuns, pyErr)
		pyDone[pyKey] = p.PyTorch
	}
	if p.Go.Seconds > 0 && p.PyTorch.Seconds > 0 {
		p.Ratio = p.Go.Seconds / p.PyTorch.Seconds
		p.MemDiff = p.Go.PeakMiB / p.PyTorch.PeakMiB
	}
	if p.Go.Params != 0 && p.PyTorch.Params != 0 && p.Go.Params != p.PyTorch.Params {
		log.Printf("WARNING %s: Go has %d parameters, PyTorch %d", r.key(), p.Go.Params, p.PyTorch.Params)
	}
	if cfg.libtorch == "" && len(pyRuns) > 0 {
		cfg.libtorch = "PyTorch " + pyRuns[0].Libtorch
		if len(goRuns) > 0 {
			cfg.libtorch += ", jmedseg built against libtorch " + goRuns[0].Libtorch
		}
	}
	return p
}

// trick is a column of the tricks table: the flags each side gets, per
// mode (nil: the trick does not apply to that mode).
type trick struct {
	Name         string
	Train, Infer [2][]string // Go flags, PyTorch flags
}

func (t trick) args(mode string) ([]string, []string) {
	if mode == "train" {
		return t.Train[0], t.Train[1]
	}
	return t.Infer[0], t.Infer[1]
}

// trickSets: "fused" is BatchNorm folding for inference (PyTorch's
// counterpart: torch.jit.freeze of the traced model) and the multi-tensor
// optimizer step for training (Adam(foreach=True)).
func trickSets(device string) []trick {
	ts := []trick{
		{Name: "fused", Train: [2][]string{{"--foreach"}, {"--foreach"}}, Infer: [2][]string{{"--fuse"}, {"--freeze"}}},
		{Name: "channels-last", Train: [2][]string{{"--channels-last"}, {"--channels-last"}}, Infer: [2][]string{{"--channels-last"}, {"--channels-last"}}},
		// jit: the Go forward's trace, frozen and optimised for inference
		// (--engine jit), against torch.jit.optimize_for_inference of
		// torch.jit.freeze of the trace (bench.py --ofi).
		{Name: "jit", Infer: [2][]string{{"--engine", "jit"}, {"--ofi"}}},
		{Name: "bf16", Train: [2][]string{{"--amp", "bf16"}, {"--amp", "bf16"}}, Infer: [2][]string{{"--amp", "bf16", "--fuse"}, {"--amp", "bf16"}}},
		// direct: Go without the Winograd kernels (its default, in every other
		// column), to show what they give; PyTorch has no counterpart.
		{Name: "direct", Train: [2][]string{{"--winograd", "off"}, {}}, Infer: [2][]string{{"--winograd", "off", "--fuse"}, {"--freeze"}}},
		// no-cache: Go on glibc's malloc (--cpu-cache off), to show what the
		// CPU block cache gives; PyTorch has no counterpart.
		{Name: "no-cache", Train: [2][]string{{"--cpu-cache", "off"}, {}}, Infer: [2][]string{{"--cpu-cache", "off", "--fuse"}, {"--freeze"}}},
	}
	if device == "cuda" {
		ts = append(ts,
			trick{Name: "graphs", Train: [2][]string{{"--cuda-graphs", "--foreach"}, {"--cuda-graphs", "--foreach"}}, Infer: [2][]string{{"--cuda-graphs", "--fuse"}, {"--cuda-graphs"}}},
			trick{Name: "bf16+graphs", Train: [2][]string{{"--cuda-graphs", "--foreach", "--amp", "bf16"}, {"--cuda-graphs", "--foreach", "--amp", "bf16"}},
				Infer: [2][]string{{"--cuda-graphs", "--fuse", "--amp", "bf16"}, {"--cuda-graphs", "--amp", "bf16"}}},
			trick{Name: "fp16", Train: [2][]string{{"--amp", "fp16"}, {"--amp", "fp16"}}, Infer: [2][]string{{"--amp", "fp16", "--fuse"}, {"--amp", "fp16"}}},
		)
	}
	return ts
}

// cfg is what every measurement shares (set once in main).
var cfg struct {
	bin, python, script, device, rawDir, libtorch string
	reps                                          int
}

var runCount int

// pyDone holds each PyTorch measurement by row, mode and flags.
var pyDone = map[string]side{}

func itoa(i int) string { return strconv.Itoa(i) }

// exec1 runs one benchmark process with the row's thread count in the
// environment, keeps its JSON in raw and decodes it.
func exec1(cmd string, args []string, threads int, raw string) (run, error) {
	var r run
	c := exec.Command(cmd, args...)
	c.Env = append(os.Environ(), "OMP_NUM_THREADS="+itoa(threads), "MKL_NUM_THREADS="+itoa(threads))
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return r, fmt.Errorf("%s: %v: %s", filepath.Base(cmd), err, msg)
	}
	if err := os.WriteFile(raw, stdout.Bytes(), 0o644); err != nil {
		return r, err
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return r, fmt.Errorf("%s: output: %v", filepath.Base(cmd), err)
	}
	if r.StepMedian <= 0 {
		return r, errors.New("no step time in the output")
	}
	return r, nil
}

func describe(r run, err error) string {
	if err != nil {
		return "ERROR " + err.Error()
	}
	return fmt.Sprintf("%.4f s/step, peak %.0f MiB, %d params", r.StepMedian, mib(r.PeakRSS), r.Params)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarise(runs []run, err error) side {
	var s side
	if err != nil {
		s.Error = err.Error()
	}
	var builds []float64
	for _, r := range runs {
		if r.Build > 0 {
			builds = append(builds, r.Build)
		}
		s.Runs = append(s.Runs, r.StepMedian)
		s.PeakRuns = append(s.PeakRuns, mib(r.PeakRSS))
		s.Params = r.Params
	}
	s.Seconds = median(s.Runs)
	s.PeakMiB = median(s.PeakRuns)
	s.Build = median(builds)
	return s
}

// machine describes the CPU, cores and memory from /proc.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					cpu = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				mem = fmt.Sprintf(", %.0f GiB", kb/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s", cpu, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
}

// measuredPeak is the largest peak either side reached at a batch.
type measuredPeak struct {
	batch int
	mib   float64
}

// estimate scales the peak linearly to another batch (activations grow with
// it; the weights do not, so this overestimates a little).
func (m measuredPeak) estimate(batch int) (float64, bool) {
	if m.batch == 0 || batch <= m.batch {
		return 0, false
	}
	return m.mib * float64(batch) / float64(m.batch), true
}

func peakKey(r row, mode string) string {
	return fmt.Sprintf("%s-s%d-w%d-t%d-%s", r.Model, r.Size, r.Width, r.Threads, mode)
}

// memBudgetMiB is two thirds of the machine's memory (0 if unknown): what
// one benchmark process may take without pushing the machine into swap.
func memBudgetMiB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024 * 2 / 3
		}
	}
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func write(dir, name string, rep *report) error {
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%s, %s). Load average %s at the start, %s at the end; %.1f minutes.\n",
		rep.Date, rep.Machine, rep.Device, rep.Libtorch, rep.LoadAvg[0], rep.LoadAvg[1], rep.Minutes)
	fmt.Fprintf(&b, "Seconds per step: median of the timed steps after warm-up, median of %d process(es) per side; "+
		"ratio = Go / PyTorch (below 1: Go faster). Peak = the process's peak resident memory (VmHWM) in MiB, "+
		"train / infer. Command: `%s`.\n\n", rep.Reps, rep.Command)
	b.WriteString("| model | params | batch | size | width | threads | steps (warm-up) | Go train s | PyTorch train s | ratio | Go infer s | PyTorch infer s | ratio | Go peak MiB | PyTorch peak MiB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Rows {
		t, i := r.Modes["train"], r.Modes["infer"]
		if t == nil { // not run (batch 1, or -modes infer)
			t = &pair{Go: side{Error: notRun}, PyTorch: side{Error: notRun}}
		}
		if i == nil { // -modes train
			i = &pair{Go: side{Error: notRun}, PyTorch: side{Error: notRun}}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d² | %d | %d | %d (%d) | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n",
			r.Model, millions(r.Params), r.Batch, r.Size, r.Width, r.Threads, r.Steps, r.Warmup,
			secs(t.Go), secs(t.PyTorch), ratio(t), secs(i.Go), secs(i.PyTorch), ratio(i),
			peak(t.Go), peak(i.Go), peak(t.PyTorch), peak(i.PyTorch))
	}
	if len(rep.Tricks) > 0 {
		writeTricks(&b, rep)
	}
	if rep.Plan == "cost" {
		figs, err := writeCost(&b, dir, name, rep)
		if err != nil {
			return err
		}
		for _, f := range figs {
			fmt.Fprintf(&b, "\n![%s](%s)\n", strings.TrimSuffix(f, ".png"), f)
		}
	}
	return os.WriteFile(filepath.Join(dir, name+".md"), []byte(b.String()), 0o644)
}

// writeTricks adds the tricks table: per row and mode, Go plain and each
// trick, as seconds with two ratios, against PyTorch eager (plain) and
// against PyTorch with the trick's counterpart.
func writeTricks(b *strings.Builder, rep *report) {
	b.WriteString("\nTricks: seconds per step; in brackets Go / PyTorch eager, then Go / PyTorch with the same trick " +
		"(fused: inference BatchNorm folding against torch.jit.freeze, training the multi-tensor Adam against " +
		"Adam(foreach=True); jit: the optimised trace (--engine jit) against torch.jit.optimize_for_inference(torch.jit.freeze(trace)), " +
		"inference only, the build not timed; bf16 inference is fused too; flags of each side in the JSON).\n\n")
	b.WriteString("| model | batch | size | mode | PyTorch eager s | Go plain s |")
	sep := "|---|---:|---:|---|---:|---:|"
	for _, t := range rep.Tricks {
		fmt.Fprintf(b, " Go %s s (vs eager, vs same) | PyTorch %s s |", t.Name, t.Name)
		sep += "---:|---:|"
	}
	b.WriteString("\n" + sep + "\n")
	eachMode(rep, func(r *result, mode string, plain *pair) {
		fmt.Fprintf(b, "| %s | %d | %d² | %s | %s | %s (%s) |", r.Model, r.Batch, r.Size, mode, secs(plain.PyTorch), secs(plain.Go), ratio(plain))
		for _, t := range rep.Tricks {
			p := r.Tricks[t.Name][mode]
			if p == nil {
				b.WriteString(" – | – |")
				continue
			}
			vsEager := "–"
			if p.Go.Seconds > 0 && plain.PyTorch.Seconds > 0 {
				vsEager = fmt.Sprintf("%.2f", p.Go.Seconds/plain.PyTorch.Seconds)
			}
			fmt.Fprintf(b, " %s (%s, %s) | %s |", secs(p.Go), vsEager, ratio(p), secs(p.PyTorch))
		}
		b.WriteString("\n")
	})
	b.WriteString("\nPeak resident MiB (VmHWM) of the same runs, Go / PyTorch with the same flags:\n\n")
	b.WriteString("| model | batch | size | mode | plain |")
	sep = "|---|---:|---:|---|---:|"
	for _, t := range rep.Tricks {
		fmt.Fprintf(b, " %s |", t.Name)
		sep += "---:|"
	}
	b.WriteString("\n" + sep + "\n")
	eachMode(rep, func(r *result, mode string, plain *pair) {
		fmt.Fprintf(b, "| %s | %d | %d² | %s | %s / %s |", r.Model, r.Batch, r.Size, mode, peak(plain.Go), peak(plain.PyTorch))
		for _, t := range rep.Tricks {
			if p := r.Tricks[t.Name][mode]; p != nil {
				fmt.Fprintf(b, " %s / %s |", peak(p.Go), peak(p.PyTorch))
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	})
}

// eachMode calls f for every row and mode the report measured.
func eachMode(rep *report, f func(r *result, mode string, plain *pair)) {
	for _, r := range rep.Rows {
		for _, mode := range []string{"train", "infer"} {
			if plain := r.Modes[mode]; plain != nil {
				f(r, mode, plain)
			}
		}
	}
}

func millions(n int64) string { return fmt.Sprintf("%.2f M", float64(n)/1e6) }

// notRun marks a mode a row skips.
const notRun = "not run"

func secs(s side) string {
	if strings.HasPrefix(s.Error, notRun) {
		return "–"
	}
	if s.Seconds == 0 {
		return "error"
	}
	return fmt.Sprintf("%.3f", s.Seconds)
}

func ratio(p *pair) string {
	if p.Ratio == 0 {
		return "–"
	}
	if p.Ratio > 1 {
		return fmt.Sprintf("**%.2f**", p.Ratio)
	}
	return fmt.Sprintf("%.2f", p.Ratio)
}

func peak(s side) string {
	if s.PeakMiB == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", s.PeakMiB)
}
