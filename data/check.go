package data

import (
	"context"
	"errors"
	"fmt"
	"image"
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
}

// Check opens the data set at dir, decodes every image and mask and reports
// each problem by file name: masks without images and images without masks,
// unreadable or corrupt files, masks whose size differs from their image,
// labels outside [0, classes), and images with the wrong channel count. It
// returns an error only when dir is not a data set at all or ctx ends.
func Check(ctx context.Context, dir string, opts CheckOptions) (*CheckReport, error) {
	d, err := Open(dir)
	if err != nil {
		return nil, err
	}
	classes := opts.Classes
	if classes == 0 {
		classes = d.NumClasses()
	}
	rep := &CheckReport{Dir: dir, Layout: d.Layout, Classes: classes, Splits: map[string]*SplitReport{}}
	rep.Issues = append(rep.Issues, d.problems...)
	if d.Manifest != nil {
		rep.Issues = append(rep.Issues, checkManifest(d)...)
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
				size, px, iss := checkSample(j.split, j.s, classes, opts.Channels)
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

func checkSample(split string, s Sample, classes, wantCh int) (string, map[int]int64, []Issue) {
	var issues []Issue
	add := func(file, kind, msg string) {
		issues = append(issues, Issue{Split: split, File: file, Kind: kind, Message: msg})
	}
	img, err := ReadImage(s.Image)
	size := ""
	if err != nil {
		add(s.Image, IssueUnreadable, unwrapFile(err))
	} else {
		b := img.Bounds()
		size = fmt.Sprintf("%dx%d", b.Dx(), b.Dy())
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

// checkManifest compares dataset.json's sample list with the files.
func checkManifest(d *Dataset) []Issue {
	var out []Issue
	m := d.Manifest
	if len(m.Classes) == 0 {
		out = append(out, Issue{File: d.Dir + "/" + ManifestFile, Kind: IssueManifest, Message: "no classes listed"})
	}
	have := map[string]bool{}
	for _, split := range d.Splits() {
		for _, s := range d.splits[split] {
			have[s.Image] = true
		}
	}
	for _, s := range m.Samples {
		p := joinDir(d.Dir, s.Image)
		if !have[p] {
			out = append(out, Issue{Split: s.Split, File: p, Kind: IssueMissingImage,
				Message: "listed in " + ManifestFile + " but not found"})
		}
	}
	return out
}
