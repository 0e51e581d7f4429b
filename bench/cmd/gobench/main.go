// Command gobench is `jmedseg bench` alone: the same flags and JSON
// (bench.Run), in a binary that links models, torch and optim only, not the
// training and distributed code. scripts/gpu-check.sh falls back to it
// where the full jmedseg does not build against a libtorch (a PyTorch wheel
// without the gloo headers that torch/dist needs).
//
//	gobench bench --model unet --batch 4 --size 128 --mode infer --device cuda --json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/jmedseg/jmedseg/bench"
	"github.com/jmedseg/jmedseg/torch"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "bench" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("gobench", flag.ExitOnError)
	var o bench.Options
	dev := fs.String("device", "cpu", "cpu, cuda, cuda:N or auto")
	threads := fs.Int("threads", 0, "libtorch intra-op threads")
	warmup := fs.Int("warmup", 3, "untimed steps first")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.StringVar(&o.Model, "model", "unet", "registered model")
	fs.IntVar(&o.Batch, "batch", 4, "batch size")
	fs.IntVar(&o.Size, "size", 128, "square input side")
	fs.Int64Var(&o.Width, "width", 0, "model base width (0: the reference's)")
	fs.IntVar(&o.Steps, "steps", 10, "timed steps")
	fs.StringVar(&o.Mode, "mode", "train", "train or infer")
	fs.BoolVar(&o.Fuse, "fuse", false, "infer: fold BatchNorms")
	fs.BoolVar(&o.ChannelsLast, "channels-last", false, "channels-last memory format")
	fs.StringVar(&o.AMP, "amp", "", "bf16 or fp16")
	fs.BoolVar(&o.Foreach, "foreach", false, "train: multi-tensor optimizer step")
	fs.BoolVar(&o.CUDAGraphs, "cuda-graphs", false, "CUDA: capture and replay the step")
	fs.StringVar(&o.Engine, "engine", "eager", "infer: eager or jit (trace, freeze, optimize_for_inference)")
	onednn := fs.Bool("onednn", true, "float32 CPU convolutions on oneDNN (false: PyTorch eager's kernels)")
	fs.StringVar(&o.Winograd, "winograd", "inference", "Winograd 3×3 convolutions: off, inference or training")
	_ = fs.Parse(args)
	o.NoOneDNN = !*onednn
	if err := run(o, *dev, *threads, *warmup, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
}

func run(o bench.Options, dev string, threads, warmup int, asJSON bool) error {
	if err := torch.CheckVersion(); err != nil {
		return err
	}
	d, err := torch.ParseDevice(dev)
	if err != nil {
		return err
	}
	o.Device = d
	torch.SetNumThreads(threads)
	o.Warmup = warmup
	if warmup == 0 {
		o.Warmup = -1 // bench.Options takes 0 as its default
	}
	r, err := bench.Run(o)
	if err != nil {
		return err
	}
	if asJSON {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(r)
	}
	fmt.Printf("%s %s: median %.4f s/step, peak RSS %.0f MiB\n", r.Model, r.Mode, r.StepMedian, float64(r.PeakRSS)/(1<<20))
	return nil
}
