package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	_ "github.com/jmedseg/jmedseg/data/dicom" // DICOM input
	"github.com/jmedseg/jmedseg/infer"
	"github.com/jmedseg/jmedseg/internal/progress"
)

var imageExts = []string{".png", ".jpg", ".jpeg", ".npy", ".nii", ".nii.gz", ".dcm", ".nrrd", ".nhdr", ".mha", ".mhd"}

func hasImageExt(name string) bool {
	l := strings.ToLower(name)
	for _, e := range imageExts {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// maskName is the name of an image's mask in an output directory: a NIfTI
// volume's keeps the input's name, any other image's takes format's
// extension.
func maskName(name, format string) string {
	if infer.IsVolume(name) {
		return infer.LabelVolumeName(name)
	}
	return strings.TrimSuffix(name, filepath.Ext(name)) + "." + format
}

// imageBar is a bar of the images among entries (nil off a terminal or
// without images) and their count.
func imageBar(bars *progress.Bars, entries []os.DirEntry) (*progress.Bar, int) {
	n := 0
	for _, e := range entries {
		if !e.IsDir() && hasImageExt(e.Name()) {
			n++
		}
	}
	if n == 0 {
		return nil, 0
	}
	bar := bars.AddBar("predict", progress.AverageETA())
	bar.Set(0, n)
	return bar, n
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:  "predict",
		Usage: "write predicted masks for an image, a volume or a directory of them",
		Flags: withCommon(append([]cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "model checkpoint"},
			&cli.StringFlag{Name: "input", Required: true, Usage: "PNG, JPEG, NPY, NIfTI or DICOM file, or a directory (multi-channel models: nnU-Net cases, ID_0000.png, ID_0001.png, ...)"},
			&cli.StringFlag{Name: "output", Required: true, Usage: "output file (.png, .npy; .nii/.nii.gz/.nrrd/.mha for volume inputs), or a directory"},
			&cli.StringFlag{Name: "format", Value: "png", Usage: "mask format for 2D inputs: png or npy (a file --output's extension must agree)"},
			&cli.BoolFlag{Name: "sliding-window", Usage: "predict at the image's own resolution with Gaussian-weighted windows of the model's input size (volumes: on their native axial slices)"},
			&cli.Float64Flag{Name: "overlap", Value: 0.5, Usage: "fraction of a window its neighbours overlap, 0 to <1 (with --sliding-window)"},
			&cli.IntFlag{Name: "window-batch", Value: 4, Usage: "windows (or slices) per forward pass, 1 or more"},
			&cli.BoolFlag{Name: "tta", Usage: "test-time augmentation: mean of the softmax of the flipped inputs' predictions, flipped back"},
			&cli.BoolFlag{Name: "largest-component", Usage: "keep each class's largest connected component only"},
			&cli.StringFlag{Name: "probabilities", Usage: "also write class probabilities: a .npy file (.nii/.nii.gz for a volume), or a directory for a directory --input"},
		}, speedFlags("a few forwards' build on each shape's first call")...)...),
		Action: func(c *cli.Context) error {
			dev, err := setup(c)
			if err != nil {
				return err
			}
			in, out := c.String("input"), c.String("output")
			format := strings.ToLower(c.String("format"))
			if format != "png" && format != "npy" {
				return fmt.Errorf("predict: --format %q: want png or npy", c.String("format"))
			}
			st, err := os.Stat(in)
			if err != nil {
				return err
			}
			if samePath(in, out) {
				what := "file: the mask would overwrite the image"
				if st.IsDir() {
					what = "directory: the masks would overwrite its images"
				}
				return fmt.Errorf("predict: --output %s is the --input %s; choose another --output", out, what)
			}
			if ost, err := os.Stat(out); err == nil && ost.IsDir() && !st.IsDir() {
				out = filepath.Join(out, maskName(filepath.Base(in), format)) // a file into a directory
				if samePath(in, out) {
					return fmt.Errorf("predict: the mask of %s would overwrite it (--output %s); choose another --output", in, c.String("output"))
				}
			}
			if !st.IsDir() {
				if err := infer.CheckOutput(in, out); err != nil {
					return fmt.Errorf("predict: --output: %w", err)
				}
				if ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(out)), "."); c.IsSet("format") && !infer.IsVolume(in) && ext != format {
					return fmt.Errorf("predict: --format %s but --output %s is .%s: give one of them, or make them agree", format, out, ext)
				}
			}
			opts, probs, err := predictOptions(c, in, out, st.IsDir())
			if err != nil {
				return err
			}
			load, err := loadOptions(c, "predict")
			if err != nil {
				return err
			}
			p, err := infer.NewPredictorWith(c.String("checkpoint"), dev, load)
			if err != nil {
				return err
			}
			defer p.Close()
			file := func(in, out string) error { return p.File(in, out) }
			if opts != nil {
				file = func(in, out string) error { return p.FileWith(in, out, probs(in), *opts) }
			}
			var written []string
			if !st.IsDir() {
				if done, err := predictCaseFile(p, in, out, opts, probs); err != nil {
					return err
				} else if !done {
					if err := file(in, out); err != nil {
						return err
					}
				}
				written = append(written, out)
			} else {
				entries, err := os.ReadDir(in)
				if err != nil {
					return err
				}
				if ch := int(p.Info().Config.InChannels); ch > 1 { // nnU-Net cases: ID_0000, ID_0001, ...
					cw, rest, err := predictCases(p, in, out, format, ch, opts, probs)
					if err != nil {
						return err
					}
					written, entries = append(written, cw...), rest
				}
				bars := progress.New(progressOut)
				defer bars.Close()
				bar, images := imageBar(bars, entries) // on a terminal
				done := 0
				for _, e := range entries {
					if e.IsDir() || !hasImageExt(e.Name()) {
						continue
					}
					name := e.Name()
					dst := filepath.Join(out, maskName(name, format))
					if samePath(filepath.Join(in, name), dst) {
						return fmt.Errorf("predict: the mask of %s would overwrite it (--output %s); choose another --output", filepath.Join(in, name), out)
					}
					bar.SetStatus(name)
					if err := file(filepath.Join(in, name), dst); err != nil {
						return err
					}
					written = append(written, dst)
					done++
					bar.Set(done, images)
				}
				bars.Close() // the list on a clean line
				if len(written) == 0 {
					return fmt.Errorf("predict: no images in %s (want %s)", in, strings.Join(imageExts, ", "))
				}
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"written": written})
			}
			for _, w := range written {
				fmt.Fprintln(c.App.Writer, w)
			}
			return nil
		},
	}
}
