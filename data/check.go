package data

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Issue kinds reported by Check.
const (
	// IssueMissingMask: an image has no mask.
	IssueMissingMask = "missing-mask"
	// IssueMissingImage: a mask, or a listed sample, has no image.
	IssueMissingImage = "missing-image"
	// IssueDuplicate: two images of a split share a file stem.
	IssueDuplicate = "duplicate"
	// IssueUnreadable: a file is missing, corrupt or of an unknown format.
	IssueUnreadable = "unreadable"
	// IssueSize: a mask's size differs from its image's.
	IssueSize = "size-mismatch"
	// IssueLabelRange: a mask has labels outside [0, classes).
	IssueLabelRange = "label-out-of-range"
	// IssueChannels: an image or mask has the wrong channel count.
	IssueChannels = "channels"
	// IssueManifest: dataset.json is inconsistent.
	IssueManifest = "manifest"
	// IssueUnsupported: a file in a split is an image format this package
	// does not read (.tif, .bmp, ...).
	IssueUnsupported = "unsupported-format"
	// IssueEmptySplit: a split has no images.
	IssueEmptySplit = "empty-split"
)

// Issue is one problem with one file.
type Issue struct {
	Split   string `json:"split,omitempty"`
	File    string `json:"file"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// String formats the issue as "file: kind: message".
func (i Issue) String() string { return fmt.Sprintf("%s: %s: %s", i.File, i.Kind, i.Message) }

// SplitReport summarises one split.
type SplitReport struct {
	Samples int `json:"samples"`
	// Valid counts samples whose image and mask decoded and agree.
	Valid int `json:"valid"`
	// Sizes counts images by "WxH".
	Sizes map[string]int `json:"sizes"`
	// ClassPixels counts mask pixels per class id (in range ones only).
	ClassPixels map[int]int64 `json:"class_pixels"`
}

// CheckReport is the result of Check.
type CheckReport struct {
	Dir     string                  `json:"dir"`
	Layout  string                  `json:"layout"`
	Classes int                     `json:"classes"`
	Splits  map[string]*SplitReport `json:"splits"`
	Issues  []Issue                 `json:"issues"`
}

// OK reports whether no issue was found.
func (r *CheckReport) OK() bool { return len(r.Issues) == 0 }

// CheckOptions tunes Check.
type CheckOptions struct {
	// Classes overrides the number of classes; 0 takes it from dataset.json
	// (or, without one, skips the label range check).
	Classes int
	// Channels, when 1 or 3, requires every image to have that many
	// channels (grey images count as 1, colour as 3).
	Channels int
	// Workers bounds parallel decoding (default GOMAXPROCS).
	Workers int
	// Open chooses the cross-validation fold of layouts that have folds.
	Open OpenOptions
}

// Check opens the data set at dir, decodes every image and mask and reports
// each problem by file name: masks without images and images without masks,
// unreadable or corrupt files, masks whose size differs from their image,
// labels outside [0, classes), and images with the wrong channel count. It
// returns an error only when dir is not a data set at all or ctx ends.
func Check(ctx context.Context, dir string, opts CheckOptions) (*CheckReport, error) {
	d, err := OpenWith(dir, opts.Open)
	if err != nil {
		return nil, err
	}
	classes := opts.Classes
	if classes == 0 {
		classes = d.NumClasses()
	}
	rep := &CheckReport{Dir: dir, Layout: d.Layout, Classes: classes, Splits: map[string]*SplitReport{}}
	rep.Issues = append(rep.Issues, d.problems...)
	if classes == 0 && d.Manifest == nil {
		rep.Issues = append(rep.Issues, Issue{File: joinDir(dir, ManifestFile), Kind: IssueManifest,
			Message: "no " + ManifestFile + ", so the number of classes is unknown and labels were not range-checked: give it with --classes N (train needs it too)"})
	}
	var want [2]int // dataset.json's width and height
	if d.Manifest != nil {
		rep.Issues = append(rep.Issues, checkManifest(d)...)
		want = [2]int{d.Manifest.Width, d.Manifest.Height}
	}
	for _, split := range d.Splits() {
		if len(d.splits[split]) == 0 {
			rep.Issues = append(rep.Issues, Issue{Split: split, File: d.splitDir(split), Kind: IssueEmptySplit,
				Message: "split has no images (train and test refuse an empty split they are given)"})
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type job struct {
		split string
		s     Sample
	}
	type result struct {
		split  string
		size   string
		pixels map[int]int64
		issues []Issue
	}
	jobs := make(chan job)
	results := make(chan result)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				size, px, iss := checkSample(j.split, j.s, classes, opts.Channels, want)
				select {
				case results <- result{j.split, size, px, iss}:
				case <-ctx.Done():
				}
			}
		})
	}
	var all []job
	for _, split := range d.Splits() {
		samples := d.splits[split]
		rep.Splits[split] = &SplitReport{Samples: len(samples), Sizes: map[string]int{}, ClassPixels: map[int]int64{}}
		for _, s := range samples {
			all = append(all, job{split, s})
		}
	}
	go func() {
		defer close(jobs)
		for _, j := range all {
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		sr := rep.Splits[r.split]
		if r.size != "" {
			sr.Sizes[r.size]++
		}
		for c, n := range r.pixels {
			sr.ClassPixels[c] += n
		}
		if len(r.issues) == 0 {
			sr.Valid++
		}
		rep.Issues = append(rep.Issues, r.issues...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(rep.Issues, func(a, b Issue) int { return strings.Compare(a.File, b.File) })
	return rep, nil
}

func channels(img image.Image) int {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return 1
	case *Planes:
		return img.(*Planes).Channels()
	case *image.Paletted:
		p := img.(*image.Paletted)
		for _, c := range p.Palette {
			r, g, b, _ := c.RGBA()
			if r != g || g != b {
				return 3
			}
		}
		return 1
	}
	return 3
}

func checkSample(split string, s Sample, classes, wantCh int, want [2]int) (string, map[int]int64, []Issue) {
	var issues []Issue
	add := func(file, kind, msg string) {
		issues = append(issues, Issue{Split: split, File: file, Kind: kind, Message: msg})
	}
	img, err := ReadSampleImage(s)
	size := ""
	if err != nil {
		file, kind := s.Image, IssueUnreadable
		if fe := (*FileError)(nil); errors.As(err, &fe) { // a channel file of the sample
			file = fe.File
		}
		if strings.Contains(err.Error(), "wrong channel count") {
			kind = IssueChannels
		}
		add(file, kind, unwrapFile(err))
	} else {
		b := img.Bounds()
		size = fmt.Sprintf("%dx%d", b.Dx(), b.Dy())
		if (want[0] > 0 || want[1] > 0) && (b.Dx() != want[0] || b.Dy() != want[1]) {
			add(s.Image, IssueManifest, fmt.Sprintf("image is %dx%d but %s gives width %d and height %d for every image (the surface distances use it)",
				b.Dx(), b.Dy(), ManifestFile, want[0], want[1]))
		}
		if ch := channels(img); wantCh != 0 && ch != wantCh {
			add(s.Image, IssueChannels, fmt.Sprintf("image has %d channels, want %d", ch, wantCh))
		}
	}
	if s.Mask == "" {
		add(s.Image, IssueMissingMask, "image has no mask")
		return size, nil, issues
	}
	m, err := ReadMask(s.Mask)
	if err != nil {
		kind := IssueUnreadable
		if strings.Contains(err.Error(), "wrong channel count") {
			kind = IssueChannels
		}
		add(s.Mask, kind, unwrapFile(err))
		return size, nil, issues
	}
	if img != nil {
		if b := img.Bounds(); b.Dx() != m.W || b.Dy() != m.H {
			add(s.Mask, IssueSize, fmt.Sprintf("mask is %dx%d but image %s is %dx%d", m.W, m.H, s.Image, b.Dx(), b.Dy()))
		}
	}
	px := map[int]int64{}
	bad := map[int32]int{}
	for _, v := range m.Pix {
		if classes > 0 && (v < 0 || int(v) >= classes) {
			bad[v]++
			continue
		}
		px[int(v)]++
	}
	if len(bad) > 0 {
		labels := make([]int32, 0, len(bad))
		for v := range bad {
			labels = append(labels, v)
		}
		slices.Sort(labels)
		add(s.Mask, IssueLabelRange, fmt.Sprintf("labels %v outside [0,%d)", labels, classes))
	}
	return size, px, issues
}

func unwrapFile(err error) string {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Err.Error()
	}
	return err.Error()
}

// splitDir is where a split's images are, for issues about the split.
func (d *Dataset) splitDir(split string) string {
	if d.Layout == LayoutReference {
		return joinDir(d.Dir, split+"_label.json")
	}
	return joinDir(d.Dir, split+"/images")
}

// checkManifest checks every field of dataset.json against how it is used:
// the classes (training needs two or more, named once each), flip pairs
// (labels in range, swapped by flips), channels (1 or 3), pixel spacing
// (x, y in mm, positive), and every listed sample (its split, image and
// mask files, spacing). Width and height are compared with each image in
// checkSample.
func checkManifest(d *Dataset) []Issue {
	var out []Issue
	m := d.Manifest
	file := joinDir(d.Dir, ManifestFile)
	bad := func(format string, args ...any) {
		out = append(out, Issue{File: file, Kind: IssueManifest, Message: fmt.Sprintf(format, args...)})
	}
	n := len(m.Classes)
	switch n {
	case 0:
		bad("no classes listed: \"classes\" names every label, background (0) first")
	case 1:
		bad("lists 1 class (%q); training needs at least 2, background (0) first", m.Classes[0])
	}
	seen := map[string]int{}
	for i, c := range m.Classes {
		if j, dup := seen[c]; dup {
			bad("classes %d and %d are both named %q", j, i, c)
		}
		seen[c] = i
	}
	for _, p := range m.FlipPairs {
		if p[0] < 0 || p[1] < 0 || p[0] >= n || p[1] >= n || p[0] == p[1] {
			bad("flip_pairs entry %v: want two different labels in [0,%d)", p, n)
		}
	}
	if m.Width < 0 || m.Height < 0 || (m.Width > 0) != (m.Height > 0) {
		bad("width %d and height %d: give both (the size every image has) or neither", m.Width, m.Height)
	}
	switch multi := d.Layout == LayoutNNUNet || d.Layout == LayoutDataList; { // layouts of one file per channel
	case !multi && m.Channels != 0 && m.Channels != 1 && m.Channels != 3:
		bad("channels %d: want 1 (grey) or 3 (colour): this layout's images are single files (multi-channel data: nnU-Net's layout, one file per channel)", m.Channels)
	case m.Channels < 0 || m.Channels > MaxChannels:
		bad("channels %d: want 1 to %d", m.Channels, MaxChannels)
	}
	if msg := spacingProblem(m.PixelSpacing); msg != "" {
		bad("pixel_spacing_mm %v: %s", m.PixelSpacing, msg)
	}
	have := map[string]Sample{}
	for _, split := range d.Splits() {
		for _, s := range d.splits[split] {
			have[s.Image] = s
		}
	}
	for _, s := range m.Samples {
		p := joinDir(d.Dir, s.Image)
		add := func(kind, format string, args ...any) {
			out = append(out, Issue{Split: s.Split, File: p, Kind: kind, Message: fmt.Sprintf(format, args...)})
		}
		got, ok := have[p]
		switch {
		case !ok:
			add(IssueMissingImage, "listed in %s but not found", ManifestFile)
		case d.Layout == LayoutJMedSeg && s.Split != "" && !strings.HasPrefix(filepath.ToSlash(s.Image), s.Split+"/"):
			add(IssueManifest, "listed in %s under split %q but it lies in another split's directory", ManifestFile, s.Split)
		case s.Mask != "" && got.Mask != "" && filepath.Clean(joinDir(d.Dir, s.Mask)) != filepath.Clean(got.Mask):
			add(IssueManifest, "%s gives its mask as %s but it pairs with %s", ManifestFile, s.Mask, got.Mask)
		}
		if s.Split != "" {
			if _, ok := d.splits[s.Split]; !ok {
				add(IssueManifest, "%s lists it under split %q, which the data set does not have", ManifestFile, s.Split)
			}
		}
		if s.SpacingMM != nil {
			if msg := spacingProblem(s.SpacingMM); msg != "" {
				add(IssueManifest, "spacing_mm %v in %s: %s", s.SpacingMM, ManifestFile, msg)
			}
		}
	}
	return out
}

// spacingProblem says what is wrong with a pixel spacing, "" if nothing.
func spacingProblem(sp []float64) string {
	if sp == nil {
		return ""
	}
	if len(sp) != 2 {
		return fmt.Sprintf("want 2 values (x, y in mm), have %d; the surface distances would silently use 1 mm", len(sp))
	}
	for _, v := range sp {
		if !(v > 0) || math.IsInf(v, 0) {
			return "want positive finite millimetres"
		}
	}
	return ""
}
