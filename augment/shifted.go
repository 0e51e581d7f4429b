package augment

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"

	"github.com/jmedseg/jmedseg/data"
)

// WriteShifted builds a shifted test split: every sample of split from in
// the data set at dir is loaded, transformed with t (e.g. PhonePhoto())
// under a generator seeded from (seed, sample index), and written as PNG
// pairs to dir/to/{images,masks}. When dir has a dataset.json, the new
// samples are appended to it with the origin of their source sample. It
// returns the number of pairs written.
func WriteShifted(ctx context.Context, dir, from, to string, t data.Transform, seed uint64) (int, error) {
	ds, err := data.Open(dir)
	if err != nil {
		return 0, err
	}
	samples, err := ds.Split(from)
	if err != nil {
		return 0, err
	}
	if from == to {
		return 0, fmt.Errorf("augment: shifted split %q must differ from its source", to)
	}
	for _, d := range []string{"images", "masks"} {
		if err := os.MkdirAll(filepath.Join(dir, to, d), 0o755); err != nil {
			return 0, err
		}
	}
	origin := map[string]data.SampleInfo{}
	if ds.Manifest != nil {
		for _, s := range ds.Manifest.Samples {
			origin[filepath.Join(dir, filepath.FromSlash(s.Image))] = s
		}
	}
	var added []data.SampleInfo
	for i, s := range samples {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		ex, err := data.LoadExample(s, false, 0)
		if err != nil {
			return i, err
		}
		if err := t.Apply(rand.New(rand.NewPCG(seed, uint64(i))), ex); err != nil {
			return i, fmt.Errorf("%s: %w", s.Image, err)
		}
		name := s.ID + ".png"
		imRel, mkRel := path.Join(to, "images", name), path.Join(to, "masks", name)
		if err := writePNG(filepath.Join(dir, filepath.FromSlash(imRel)), ex.Image); err != nil {
			return i, err
		}
		mi, err := ex.Mask.Image()
		if err != nil {
			return i, fmt.Errorf("%s: %w", s.Mask, err)
		}
		if err := writePNG(filepath.Join(dir, filepath.FromSlash(mkRel)), mi); err != nil {
			return i, err
		}
		info := origin[s.Image]
		info.Split, info.Image, info.Mask = to, imRel, mkRel
		added = append(added, info)
	}
	if ds.Manifest != nil {
		m := ds.Manifest
		kept := m.Samples[:0]
		for _, s := range m.Samples {
			if s.Split != to {
				kept = append(kept, s)
			}
		}
		m.Samples = append(kept, added...)
		if m.Split != nil {
			if m.Split.Counts == nil {
				m.Split.Counts = map[string]int{}
			}
			m.Split.Counts[to] = len(added)
		}
		if err := data.WriteManifest(dir, m); err != nil {
			return len(samples), err
		}
	}
	return len(samples), nil
}

func writePNG(p string, img image.Image) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p, err)
	}
	return f.Close()
}
