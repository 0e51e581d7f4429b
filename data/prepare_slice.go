package data

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/jmedseg/jmedseg/data/nifti"
)

// sliceSubject writes the axial slices of one subject and records them in
// man and rep.
func sliceSubject(ctx context.Context, o *PrepareOptions, s *subject, man *Manifest, rep *PrepareReport) (*Source, error) {
	raw, img, err := readRAS(s.image)
	if err != nil {
		return nil, err
	}
	_, mask, err := readRAS(s.mask)
	if err != nil {
		return nil, err
	}
	if !sameGrid(img, mask) {
		return nil, fmt.Errorf("%s: grid %v does not match image %s %v", s.mask, mask.Dim, s.image, img.Dim)
	}
	lbl := mask
	if s.labels != "" {
		if _, lbl, err = readRAS(s.labels); err != nil {
			return nil, err
		}
		if !sameGrid(img, lbl) {
			return nil, fmt.Errorf("%s: grid %v does not match image %s %v", s.labels, lbl.Dim, s.image, img.Dim)
		}
	}
	fr := brainFrame(mask, o.Size, o.Margin)
	lo, hi := volumePercentiles(img, 0.5, 99.5)

	// Slices with enough brain, inferior to superior.
	var keep []int
	for k := range fr.nz {
		b := fr.labels(mask, k, binary)
		n := 0
		for _, v := range b.Pix {
			n += int(v)
		}
		f := float64(n) / float64(len(b.Pix))
		if f >= o.MinForeground {
			keep = append(keep, k)
		} else {
			rep.SkippedEmpty++
		}
	}
	var assign []string
	if len(s.splits) == 1 {
		assign = make([]string, len(keep))
		for i := range assign {
			assign[i] = s.splits[0]
		}
	} else {
		assign = slabSplit(keep, o.Slab, o.Guard, s.splits)
	}

	orient := raw.Orientation()
	axis := strings.IndexAny(orient, "SI")
	sliced := func(i int) { // progress: the slice is handled, written or dropped
		if o.OnSlice != nil {
			o.OnSlice(s.id, i+1, len(keep))
		}
	}
	for i, k := range keep {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		split := assign[i]
		if split == "" {
			rep.SkippedGuard++
			sliced(i)
			continue
		}
		stored := k
		if orient[axis] == 'I' {
			stored = raw.Dim[axis] - 1 - k
		}
		name := fmt.Sprintf("%s_z%03d.png", s.id, k)
		imRel := path.Join(split, "images", name)
		mkRel := path.Join(split, "masks", name)
		m := fr.labels(lbl, k, s.lut)
		if err := writePNG(joinDir(o.Out, imRel), fr.grey(img, k, lo, hi)); err != nil {
			return nil, err
		}
		mi, err := m.Image()
		if err != nil {
			return nil, fmt.Errorf("%s slice %d: %w", s.image, k, err)
		}
		if err := writePNG(joinDir(o.Out, mkRel), mi); err != nil {
			return nil, err
		}
		nonzero := 0
		for _, v := range m.Pix {
			if v != 0 {
				nonzero++
			}
		}
		si := SampleInfo{
			Split: split, Image: imRel, Mask: mkRel, Subject: s.id,
			Volume: filepath.Base(s.image), MaskVolume: filepath.Base(s.mask),
			Axis: axis, Index: stored, Plane: "axial",
			WorldMM:    worldZ(img, fr, k),
			SpacingMM:  []float64{round4(fr.step), round4(fr.step)},
			Foreground: round4(float64(nonzero) / float64(len(m.Pix))),
		}
		if s.labels != "" {
			si.LabelVolume = filepath.Base(s.labels)
		}
		man.Samples = append(man.Samples, si)
		rep.Counts[split]++
		sliced(i)
	}

	src := &Source{
		ID: s.id, Description: s.desc, Package: s.pkg.Package, Version: s.pkg.Version,
		Files:       map[string]string{"image": "/" + s.imageRel, "mask": "/" + s.maskRel},
		SHA256:      map[string]string{},
		Orientation: orient,
		Dim:         raw.Dim[:3],
		SpacingMM:   raw.Spacing[:],
	}
	if s.lblRel != "" {
		src.Files["labels"] = "/" + s.lblRel
		src.Files["label_names"] = "/" + mricronDir + "/aal.nii.txt"
	}
	for k, p := range map[string]string{"image": s.image, "mask": s.mask, "labels": s.labels} {
		if p == "" {
			continue
		}
		h, err := sha256File(p)
		if err != nil {
			return nil, err
		}
		src.SHA256[k] = h
	}
	src.Citation, src.License = citation(s.id, s.labels != "")
	return src, nil
}

func citation(id string, aal bool) (string, string) {
	switch id {
	case "colin27":
		c := "Holmes CJ, Hoge R, Collins L, Woods R, Toga AW, Evans AC. Enhancement of MR images using registration for signal averaging. J Comput Assist Tomogr 22(2):324-333, 1998. Distributed with MRIcron (Chris Rorden), Debian package mricron-data."
		if aal {
			c += " AAL: Tzourio-Mazoyer N et al. Automated anatomical labeling of activations in SPM using a macroscopic anatomical parcellation of the MNI MRI single-subject brain. NeuroImage 15(1):273-289, 2002."
		}
		return c, "BSD-3-clause (mricron-data, see /usr/share/doc/mricron-data/copyright)"
	default:
		return "Insight Segmentation and Registration Toolkit (ITK) 5.2 example data, Debian package insighttoolkit5-examples.", "Apache-2.0 (see /usr/share/doc/insighttoolkit5-examples/copyright)"
	}
}

func round4(x float64) float64 {
	return math.Round(x*1e4) / 1e4
}

// worldZ is the superior coordinate (mm) of axial plane k at the frame
// centre.
func worldZ(v *nifti.Volume, fr frame, k int) float64 {
	half := float64(fr.size-1) / 2
	ci := fr.x0 + half*fr.step/fr.sx
	cj := fr.y0 - half*fr.step/fr.sy
	a := v.Affine[2]
	return round4(a[0]*ci + a[1]*cj + a[2]*float64(k) + a[3])
}

// volumePercentiles estimates percentiles of the positive voxels from at
// most about a million evenly spaced samples.
func volumePercentiles(v *nifti.Volume, lo, hi float64) (float64, float64) {
	stride := max(1, len(v.Data)>>20)
	sample := make([]float64, 0, len(v.Data)/stride+1)
	for i := 0; i < len(v.Data); i += stride {
		sample = append(sample, v.Data[i])
	}
	return percentiles(sample, lo, hi)
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
