package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jmedseg/jmedseg/export"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a trained model for PyTorch or libtorch without jmedseg: TorchScript (the whole pipeline) or a bare safetensors state dict",
		Description: "torchscript: a module that torch.jit.load and torch::jit::load run; its forward takes raw pixel values\n" +
			"float32 [N, C, H, W] at the model's input size (0 to 255 for 8-bit images; the normalisation is inside)\n" +
			"and returns the logits [N, classes, H, W]; class names and configuration are attributes (class_names,\n" +
			"in_channels, num_classes, input_size, pixel_scale, norm_mean, norm_std, model, jmedseg_info).\n" +
			"safetensors: the state dict under PyTorch's key names, for a user who has the architecture.",
		Flags: withCommon(
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "model file (a run's best.safetensors, or last.safetensors)"},
			&cli.StringFlag{Name: "format", Value: "torchscript", Usage: "torchscript or safetensors"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output file (model.pt, model.safetensors)"},
			&cli.BoolFlag{Name: "force", Usage: "replace --out when it exists"},
		),
		Action: func(c *cli.Context) error {
			dev, err := setup(c)
			if err != nil {
				return err
			}
			if dev.IsCUDA() {
				return fmt.Errorf("export: --device %s: export traces and writes the model on the CPU (a TorchScript user moves it with map_location or .to)", c.String("device"))
			}
			format := strings.ToLower(c.String("format"))
			if format != "torchscript" && format != "safetensors" {
				return fmt.Errorf("export: --format %q: want %s", c.String("format"), strings.Join(export.Formats, " or "))
			}
			ckptPath, out := c.String("checkpoint"), c.String("out")
			if samePath(ckptPath, out) {
				return fmt.Errorf("export: --out %s is the --checkpoint: the export would replace the trained model; choose another --out", out)
			}
			if fileExists(out) && !c.Bool("force") {
				return fmt.Errorf("export: --out %s exists; pass --force to replace it, or choose another --out", out)
			}
			rep, err := export.Write(ckptPath, format, out)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, rep)
			}
			fmt.Fprintf(c.App.Writer, "%s: %s of %s (%d tensors, %d values), input [N, %d, %d, %d] raw pixels, classes %s",
				rep.Out, rep.Format, rep.Model, rep.Tensors, rep.Elements, rep.InChannels, rep.Size[0], rep.Size[1], strings.Join(rep.Classes, ", "))
			if rep.Format == "torchscript" {
				fmt.Fprintf(c.App.Writer, "; checked against jmedseg's forward: max relative difference %.1e", rep.MaxDiff)
			}
			fmt.Fprintln(c.App.Writer)
			return nil
		},
	}
}
