package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/jmedseg/jmedseg/infer"
)

// predictCases predicts the multi-channel cases of the directory in for a
// model of ch > 1 input channels (nnU-Net's ID_0000<ext>, ID_0001<ext>,
// ... files; see infer.Cases), each mask written to out as ID.png (.npy)
// or ID<ext> for volumes, and returns what it wrote and the directory
// entries left to predict one file each.
func predictCases(p *infer.Predictor, in, out, format string, ch int, opts *infer.Options, probs func(string) string) ([]string, []os.DirEntry, error) {
	cases, singles, err := infer.Cases(in, ch)
	if err != nil {
		return nil, nil, fmt.Errorf("predict: %w", err)
	}
	o := infer.Options{}
	if opts != nil {
		o = *opts
	}
	var written []string
	for _, c := range cases {
		dst := filepath.Join(out, c.OutName(format))
		if err := p.CaseWith(c.Files, dst, probs(filepath.Join(in, c.ID+c.Ext)), o); err != nil {
			return nil, nil, err
		}
		written = append(written, dst)
	}
	keep := map[string]bool{}
	for _, s := range singles {
		keep[filepath.Base(s)] = true
	}
	entries, err := os.ReadDir(in)
	if err != nil {
		return nil, nil, err
	}
	rest := entries[:0]
	for _, e := range entries {
		if keep[e.Name()] {
			rest = append(rest, e)
		}
	}
	return written, rest, nil
}

// predictCaseFile predicts a file --input that is channel 0 of a case
// (ID_0000<ext> with its sibling channel files) for a model of more than
// one channel; done is false when it is an input of its own.
func predictCaseFile(p *infer.Predictor, in, out string, opts *infer.Options, probs func(string) string) (done bool, err error) {
	ch := int(p.Info().Config.InChannels)
	if ch < 2 {
		return false, nil
	}
	c, ok, err := infer.CaseOf(in, ch)
	if err != nil || !ok {
		return false, err
	}
	o := infer.Options{}
	if opts != nil {
		o = *opts
	}
	return true, p.CaseWith(c.Files, out, probs(in), o)
}
