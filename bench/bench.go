// Package bench times models: training steps (forward, loss, backward,
// Adam step) and inference, after warm-up, with the median step time and the
// process's peak resident memory. The PyTorch side of the comparison lives
// in this folder too (bench.py, models/).
package bench

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/models"
	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/nn"
	"github.com/jmedseg/jmedseg/torch/optim"
)

// Options select what to time.
type Options struct {
	Model   string
	Batch   int
	Size    int // square input side
	Width   int64
	Classes int64
	Steps   int    // timed steps (after Warmup)
	Warmup  int    // untimed steps first (default 3)
	Mode    string // train or infer
	Device  torch.Device

	// The tricks, each off by default (the plain column).
	Fuse         bool   // infer: fold BatchNorms into convolutions (models.Fuse)
	ChannelsLast bool   // model weights and input in channels-last (NHWC) memory format
	AMP          string // "", "bf16" or "fp16" (CUDA): autocast forward (fp16 training with gradient scaling)
	Foreach      bool   // train: the multi-tensor optimizer step (optim.ImplForeach)
	CUDAGraphs   bool   // CUDA: capture one step and replay it (train: forward and backward; the step eager)
	NoOneDNN     bool   // convolutions on the kernels PyTorch eager picks (torch.SetOneDNNConv(false))
	// Winograd is the mode of oneDNN's Winograd 3×3 convolutions for the run
	// ("off", "inference" or "training"; "" keeps the process's, by
	// default training).
	Winograd string
	// Engine (infer): "" or "eager" runs the Go forward, "jit" its trace,
	// frozen and optimised for inference (infer.JIT); its build (trace,
	// optimisation, check) is one more untimed step, reported apart.
	Engine string
	// Profile runs one more step after the timed ones, untimed, under
	// libtorch's operator profiler (Result.Profile, Result.ProfileTrace).
	// On CUDA it sees the host's side: each operator's launch, not the
	// kernel's time.
	Profile bool
}

// Result is one benchmark's figures.
type Result struct {
	Model         string    `json:"model"`
	Mode          string    `json:"mode"`
	Params        int64     `json:"params"`
	Batch         int       `json:"batch"`
	Size          int       `json:"size"`
	Width         int64     `json:"width"`
	Threads       int       `json:"threads"`
	Device        string    `json:"device"`
	Steps         int       `json:"steps"`
	StepMedian    float64   `json:"step_seconds_median"`
	StepMin       float64   `json:"step_seconds_min"`
	StepMean      float64   `json:"step_seconds_mean"`
	ImagesPerSec  float64   `json:"images_per_second"`
	PeakRSS       int64     `json:"peak_rss_bytes"`
	StepSeconds   []float64 `json:"step_seconds"`
	LibtorchBuild string    `json:"libtorch"`
	Fused         int       `json:"fused_batchnorms,omitempty"`
	ChannelsLast  bool      `json:"channels_last,omitempty"`
	AMP           string    `json:"amp,omitempty"`
	Foreach       bool      `json:"foreach,omitempty"`
	CUDAGraphs    bool      `json:"cuda_graphs,omitempty"`
	NoOneDNN      bool      `json:"no_onednn,omitempty"`
	Winograd      string    `json:"winograd,omitempty"`    // the mode in effect (off where unavailable)
	CPUCache      int64     `json:"cpu_cache_limit_bytes"` // the CPU block cache's limit (0: off)
	Engine        string    `json:"engine,omitempty"`
	// BuildSeconds is the jit engine's first call: trace, freeze and
	// optimise, check against the Go forward, run.
	BuildSeconds float64 `json:"engine_build_seconds,omitempty"`
	// Profile is the profiled step's operators by self time (Options.Profile);
	// ProfileTrace its Chrome trace.
	Profile      []torch.ProfileOp `json:"profile,omitempty"`
	ProfileTrace []byte            `json:"-"`
}

// Run times opt.Steps steps of opt.Model.
func Run(opt Options) (*Result, error) {
	if opt.Batch <= 0 || opt.Size <= 0 || opt.Steps <= 0 {
		return nil, fmt.Errorf("bench: batch, size and steps must be positive")
	}
	if opt.Warmup == 0 {
		opt.Warmup = 3
	}
	if opt.Classes == 0 {
		opt.Classes = 2
	}
	if opt.Mode != "train" && opt.Mode != "infer" {
		return nil, fmt.Errorf("bench: mode %q: want train or infer", opt.Mode)
	}
	spec, ok := models.Lookup(opt.Model)
	if !ok {
		_, err := models.New(opt.Model, models.Config{})
		return nil, err
	}
	if err := spec.CheckSize(int64(opt.Size), int64(opt.Size)); err != nil {
		return nil, err
	}
	amp, useAMP, err := torch.ParseAMP(opt.AMP, opt.Device)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	opt.Engine = strings.ToLower(opt.Engine)
	if err := infer.CheckEngine(opt.Engine, opt.AMP); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	jitEngine := opt.Engine == infer.EngineJIT
	if jitEngine && (opt.Mode != "infer" || opt.CUDAGraphs) {
		return nil, fmt.Errorf("bench: --engine jit is for --mode infer, without --cuda-graphs")
	}
	if opt.CUDAGraphs {
		if !opt.Device.IsCUDA() {
			return nil, fmt.Errorf("bench: --cuda-graphs needs --device cuda")
		}
		if !torch.CUDAGraphsBuilt() {
			return nil, fmt.Errorf("bench: --cuda-graphs: this jmedseg was built without CUDA graphs (build against a CUDA libtorch with the CUDA headers: make LIBTORCH=... CUDA_INCLUDE=...)")
		}
	}
	cfg := spec.Resolve(models.Config{InChannels: 3, Classes: opt.Classes, Width: opt.Width})
	m, err := models.New(opt.Model, cfg)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if err := m.To(opt.Device); err != nil {
		return nil, err
	}
	x := torch.Randn([]int64{int64(opt.Batch), 3, int64(opt.Size), int64(opt.Size)}, opt.Device)
	defer x.Free()
	if opt.ChannelsLast {
		if err := nn.ToMemoryFormat(m, torch.ChannelsLastFormat); err != nil {
			return nil, err
		}
		cl := x.ContiguousAs(torch.ChannelsLastFormat)
		defer cl.Free()
		x = cl
	}
	y := torch.RandInt(0, opt.Classes, []int64{int64(opt.Batch), int64(opt.Size), int64(opt.Size)}, opt.Device)
	defer y.Free()
	// Counted before fusing, which gives convolutions biases of their own.
	res := &Result{ChannelsLast: opt.ChannelsLast, AMP: opt.AMP, CUDAGraphs: opt.CUDAGraphs, NoOneDNN: opt.NoOneDNN, Engine: opt.Engine, Params: m.NumParams()}
	if opt.NoOneDNN {
		defer torch.SetOneDNNConv(torch.SetOneDNNConv(false))
	}
	if opt.Winograd != "" {
		wm, err := torch.ParseWinogradMode(opt.Winograd)
		if err != nil {
			return nil, fmt.Errorf("bench: --winograd: %w", err)
		}
		defer torch.SetWinograd(torch.SetWinograd(wm))
	}
	res.Winograd = torch.Winograd().String()
	res.CPUCache = torch.CPUCacheLimit()
	var graph *torch.CUDAGraph
	if opt.CUDAGraphs {
		if graph, err = torch.NewCUDAGraph(opt.Device); err != nil {
			return nil, err
		}
		defer graph.Free()
	}
	var step func() error
	if opt.Mode == "train" {
		impl := optim.ImplAuto
		if opt.Foreach {
			impl = optim.ImplForeach
			res.Foreach = true
		}
		var opt2 optim.Optimizer
		opt2, err = optim.NewAdam(optim.AdamConfig{LR: 1e-4, Impl: impl}, optim.Params(m.Parameters()))
		if err != nil {
			return nil, err
		}
		defer opt2.Free()
		m.Train(true)
		var fwd nn.Module = m
		if useAMP {
			a := models.WithAutocast(m, opt.Device, amp)
			if amp == torch.Float16 {
				scaler := optim.NewGradScaler()
				a.GradScale = scaler.Scale
				opt2 = scaler.Wrap(opt2)
			}
			fwd = a
		}
		lossOf := func(s *torch.Scope) *torch.Tensor {
			return torch.CrossEntropy(fwd.Forward(s.Track(x.Shallow())), y, nil, torch.ReduceMean, torch.NoIgnoreIndex, 0)
		}
		step = func() error {
			s := torch.NewScope()
			defer s.Close()
			l := lossOf(s)
			if err := l.Backward(); err != nil {
				return err
			}
			if err := opt2.Step(); err != nil {
				return err
			}
			if err := opt2.ZeroGrad(); err != nil {
				return err
			}
			_, err := l.Item() // synchronises, as a training loop reading its loss does
			return err
		}
		if graph != nil {
			if step, err = graphTrainStep(graph, opt2, lossOf, opt.Warmup); err != nil {
				return nil, err
			}
		}
	} else {
		m.Eval()
		if opt.Fuse {
			rep, err := models.Fuse(m)
			if err != nil {
				return nil, err
			}
			res.Fused = len(rep.Folded)
		}
		var fwd nn.Module = m
		if useAMP {
			fwd = models.WithAutocast(m, opt.Device, amp)
		}
		if jitEngine {
			j, err := infer.NewJIT(m, opt.Model)
			if err != nil {
				return nil, err
			}
			defer j.Free() // frees m too, which the deferred m.Free then finds freed
			fwd = j
		}
		step = func() error {
			var err error
			torch.InferenceMode(func() {
				s := torch.NewScope()
				defer s.Close()
				out := fwd.Forward(s.Track(x.Shallow())).Sum()
				_, err = out.Item()
			})
			return err
		}
		if graph != nil {
			if step, err = graphInferStep(graph, fwd, x, opt.Warmup); err != nil {
				return nil, err
			}
		}
	}
	// As the trainer does: one OS thread, one malloc arena.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if jitEngine {
		t0 := time.Now()
		if err := step(); err != nil {
			return nil, err
		}
		res.BuildSeconds = time.Since(t0).Seconds()
	}
	for i := 0; i < opt.Warmup; i++ {
		if err := step(); err != nil {
			return nil, err
		}
	}
	times := make([]float64, opt.Steps)
	for i := range times {
		t0 := time.Now()
		if err := step(); err != nil {
			return nil, err
		}
		times[i] = time.Since(t0).Seconds()
	}
	sorted := append([]float64(nil), times...)
	sort.Float64s(sorted)
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	sum := 0.0
	for _, v := range times {
		sum += v
	}
	runtime.GC()
	res.Model, res.Mode, res.Batch, res.Size, res.Width = opt.Model, opt.Mode, opt.Batch, opt.Size, cfg.Width
	res.Threads, res.Device, res.Steps, res.StepMedian, res.StepMin = torch.NumThreads(), opt.Device.String(), opt.Steps, med, sorted[0]
	res.StepMean, res.ImagesPerSec, res.PeakRSS, res.StepSeconds = sum/float64(len(times)), float64(opt.Batch)/med, PeakRSS(), times
	res.LibtorchBuild = torch.HeaderVersion()
	if opt.Profile {
		if err := torch.StartProfile(); err != nil {
			return nil, err
		}
		err := step()
		ops, trace, perr := torch.StopProfile(true)
		if err != nil {
			return nil, err
		}
		if perr != nil {
			return nil, perr
		}
		res.Profile, res.ProfileTrace = ops, trace
	}
	return res, nil
}

// PeakRSS is the process's peak resident set size in bytes (VmHWM), or 0
// where /proc is not available.
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
