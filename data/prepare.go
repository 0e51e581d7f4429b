package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jmedseg/jmedseg/data/nifti"
)

// Tasks Prepare can build.
const (
	// TaskBrain is binary brain segmentation (background, brain).
	TaskBrain = "brain"
	// TaskAAL is coarse anatomical parcellation into AALLobes.
	TaskAAL = "aal"
)

// Split names written by Prepare.
const (
	// SplitTrain is the training split.
	SplitTrain = "train"
	// SplitVal is the validation split.
	SplitVal = "val"
	// SplitTest is the same-subject test split.
	SplitTest = "test"
	// SplitTestXSubject is the cross-subject test split (ITK KmeansTest head).
	SplitTestXSubject = "test_xsubject"
)

const (
	defaultSize        = 128
	defaultSlab        = 10
	defaultGuard       = 3
	defaultMargin      = 0.06
	defaultMinFraction = 0.03
)

// PrepareOptions configures Prepare. Zero values take the documented
// defaults.
type PrepareOptions struct {
	// Out is the output directory (required). It must be empty or absent
	// unless Force is set.
	Out string
	// Task is TaskBrain (default) or TaskAAL.
	Task string
	// Size is the side of the square output images (default 128).
	Size int
	// CacheDir receives the extracted Debian packages (default
	// DefaultCacheDir()).
	CacheDir string
	// MinForeground skips slices whose brain covers less than this fraction
	// of the output image (default 0.03).
	MinForeground float64
	// Slab is the number of consecutive slices per split slab (default 10)
	// and Guard the number of slices dropped at each boundary between slabs
	// of different splits (default 3, i.e. 3 mm for Colin27).
	Slab, Guard int
	// Margin is the field-of-view margin around the brain's bounding box as
	// a fraction of its larger side (default 0.06).
	Margin float64
	// Force allows writing into a non-empty Out: Prepare then removes the
	// split directories and dataset.json it would write, nothing else.
	Force bool
	// Log, when set, receives progress lines.
	Log io.Writer
	// OnSlice, when set, is called after each of a subject's slices with
	// enough brain (written or dropped as a guard): done of total.
	OnSlice func(subject string, done, total int)
}

// PrepareReport summarises what Prepare wrote.
type PrepareReport struct {
	Out     string         `json:"out"`
	Task    string         `json:"task"`
	Classes []string       `json:"classes"`
	Size    int            `json:"size"`
	Counts  map[string]int `json:"counts"`
	// SkippedEmpty counts slices with too little brain; SkippedGuard the
	// slices dropped as guards between splits.
	SkippedEmpty int      `json:"skipped_empty"`
	SkippedGuard int      `json:"skipped_guard"`
	Sources      []Source `json:"sources"`
	Seconds      float64  `json:"seconds"`
}

// subject is one head to slice.
type subject struct {
	id, desc                  string
	image, mask, labels       string // paths
	imageRel, maskRel, lblRel string
	lut                       func(float64) int32
	splits                    []string // slab pattern; one entry: every slice
	pkg                       *DebFiles
}

// Prepare builds the default brain MRI data set (see README.md) in
// opts.Out: axial slices of the Colin27 T1 template from Debian's
// mricron-data, split by slabs with guard gaps into train, val and test,
// plus (for the brain task) a cross-subject test split from ITK's
// KmeansTest T1 head in insighttoolkit5-examples. Missing packages are
// fetched with apt-get download and dpkg -x into the cache; the system is
// not changed.
func Prepare(ctx context.Context, opts PrepareOptions) (*PrepareReport, error) {
	start := time.Now()
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	logf := func(format string, a ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", a...)
		}
	}
	if err := prepareOut(&opts); err != nil {
		return nil, err
	}
	subjects, err := fetchSubjects(ctx, &opts, logf)
	if err != nil {
		return nil, err
	}
	classes := []string{"background", "brain"}
	if opts.Task == TaskAAL {
		classes = AALLobes
	}
	man := &Manifest{
		Name:        "jmedseg-brain-mri-" + opts.Task,
		Description: fmt.Sprintf("Axial T1 MRI slices, %dx%d 8-bit grey PNG, %s masks; built by jmedseg data prepare", opts.Size, opts.Size, opts.Task),
		Task:        opts.Task,
		Classes:     classes,
		Width:       opts.Size, Height: opts.Size, Channels: 1,
		Split: &SplitInfo{
			Method: "contiguous slabs of axial slices assigned cyclically train,train,val,train,test with guard slices dropped at every boundary between different splits; second subject entirely in test_xsubject",
			Params: map[string]any{"slab": opts.Slab, "guard": opts.Guard, "min_foreground": opts.MinForeground},
			Counts: map[string]int{},
		},
	}
	rep := &PrepareReport{Out: opts.Out, Task: opts.Task, Classes: classes, Size: opts.Size, Counts: map[string]int{}}
	for _, s := range subjects {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src, err := sliceSubject(ctx, &opts, s, man, rep)
		if err != nil {
			return nil, err
		}
		man.Sources = append(man.Sources, *src)
		logf("%s: %d slices written", s.id, countSubject(man, s.id))
	}
	for k, v := range rep.Counts {
		man.Split.Counts[k] = v
	}
	for _, sp := range preparedSplits {
		if rep.Counts[sp] == 0 { // no empty split directories (the aal task has no second subject)
			if err := os.RemoveAll(filepath.Join(opts.Out, sp)); err != nil {
				return nil, err
			}
		}
	}
	if err := WriteManifest(opts.Out, man); err != nil {
		return nil, err
	}
	rep.Sources = man.Sources
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func (o *PrepareOptions) defaults() error {
	if o.Out == "" {
		return errors.New("prepare: no output directory")
	}
	if o.Task == "" {
		o.Task = TaskBrain
	}
	if o.Task != TaskBrain && o.Task != TaskAAL {
		return fmt.Errorf("prepare: unknown task %q (want %q or %q)", o.Task, TaskBrain, TaskAAL)
	}
	if o.Size == 0 {
		o.Size = defaultSize
	}
	if o.Size < 16 || o.Size > 4096 {
		return fmt.Errorf("prepare: size %d out of range [16,4096]", o.Size)
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.MinForeground == 0 {
		o.MinForeground = defaultMinFraction
	}
	if o.Slab == 0 {
		o.Slab = defaultSlab
	}
	if o.Guard == 0 {
		o.Guard = defaultGuard
	}
	if o.Margin == 0 {
		o.Margin = defaultMargin
	}
	if o.Slab < 1 || o.Guard < 0 || o.Guard >= o.Slab {
		return fmt.Errorf("prepare: slab %d and guard %d: want 0 <= guard < slab", o.Slab, o.Guard)
	}
	return nil
}

var preparedSplits = []string{SplitTrain, SplitVal, SplitTest, SplitTestXSubject}

func prepareOut(o *PrepareOptions) error {
	entries, err := os.ReadDir(o.Out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(entries) > 0 {
		if !o.Force {
			return fmt.Errorf("prepare: %s is not empty (use Force to overwrite)", o.Out)
		}
		for _, s := range preparedSplits {
			if err := os.RemoveAll(filepath.Join(o.Out, s)); err != nil {
				return err
			}
		}
		if err := os.Remove(filepath.Join(o.Out, ManifestFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, s := range preparedSplits {
		for _, d := range []string{"images", "masks"} {
			if err := os.MkdirAll(filepath.Join(o.Out, s, d), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

func fetchSubjects(ctx context.Context, o *PrepareOptions, logf func(string, ...any)) ([]*subject, error) {
	mri, err := FetchDeb(ctx, PkgMricronData, mricronDir+"/ch2.nii.gz", o.CacheDir)
	if err != nil {
		return nil, err
	}
	logf("%s %s in %s", mri.Package, mri.Version, mri.Root)
	colin := &subject{
		id: "colin27", desc: "Colin27 (ch2) T1 template, 1 mm, MNI space; mask = ch2bet > 0",
		imageRel: mricronDir + "/ch2.nii.gz", maskRel: mricronDir + "/ch2bet.nii.gz",
		splits: []string{SplitTrain, SplitTrain, SplitVal, SplitTrain, SplitTest},
		pkg:    mri, lut: binary,
	}
	subjects := []*subject{colin}
	if o.Task == TaskAAL {
		colin.lblRel = mricronDir + "/aal.nii.gz"
		names, err := readAALNames(mri.Path(mricronDir + "/aal.nii.txt"))
		if err != nil {
			return nil, err
		}
		if colin.lut, err = aalLUT(names); err != nil {
			return nil, err
		}
		colin.desc = "Colin27 (ch2) T1 template with the AAL atlas merged into lobes (aal.nii.gz, aal.nii.txt)"
	} else {
		itk, err := FetchDeb(ctx, PkgITKExamples, itkExamplesData+"/KmeansTest_T1UCharRaw.nii.gz", o.CacheDir)
		if err != nil {
			return nil, err
		}
		logf("%s %s in %s", itk.Package, itk.Version, itk.Root)
		subjects = append(subjects, &subject{
			id: "itk_kmeans", desc: "ITK KmeansTest T1 head, 128x128x62 at 2x2x3 mm, stored coronally; mask = KmeansTest_T1RawSkullStrip > 0",
			imageRel: itkExamplesData + "/KmeansTest_T1UCharRaw.nii.gz", maskRel: itkExamplesData + "/KmeansTest_T1RawSkullStrip.nii.gz",
			splits: []string{SplitTestXSubject}, pkg: itk, lut: binary,
		})
	}
	for _, s := range subjects {
		for _, f := range []struct{ rel, dst *string }{{&s.imageRel, &s.image}, {&s.maskRel, &s.mask}, {&s.lblRel, &s.labels}} {
			if *f.rel == "" {
				continue
			}
			p := s.pkg.Path(*f.rel)
			if _, err := os.Stat(p); err != nil {
				if s.pkg.Root == "/" {
					return nil, fmt.Errorf("package %s: %w", s.pkg.Package, err)
				}
				if p, err = findFile(s.pkg.Root, filepath.Base(*f.rel)); err != nil {
					return nil, fmt.Errorf("package %s: %w", s.pkg.Package, err)
				}
			}
			*f.dst = p
		}
	}
	return subjects, nil
}

func countSubject(m *Manifest, id string) int {
	n := 0
	for _, s := range m.Samples {
		if s.Subject == id {
			n++
		}
	}
	return n
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readRAS reads a volume and reorients it to RAS.
func readRAS(path string) (*nifti.Volume, *nifti.Volume, error) {
	v, err := nifti.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if v.Dim[3] != 1 {
		return nil, nil, fmt.Errorf("%s: %d frames, want a 3D volume", path, v.Dim[3])
	}
	return v, v.ToRAS(), nil
}

func sameGrid(a, b *nifti.Volume) bool {
	return a.Dim == b.Dim && slices.Equal(a.Spacing[:], b.Spacing[:])
}
