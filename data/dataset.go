package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Layouts recognised by Open.
const (
	// LayoutJMedSeg is {split}/images + {split}/masks, with dataset.json.
	LayoutJMedSeg = "jmedseg"
	// LayoutReference is the reference JMedSeg layout: {split}_label.json,
	// data/<name>.jpg|png and label/<name>.npy.
	LayoutReference = "reference"
	// LayoutNNUNet is nnU-Net v2's raw layout: dataset.json with
	// channel_names, labels and file_ending; imagesTr/, labelsTr/, imagesTs/.
	LayoutNNUNet = "nnunet"
	// LayoutDataList is a MONAI-style data list: a JSON file with
	// "training" (and optionally "validation" and "test") entries.
	LayoutDataList = "datalist"
)

// Sample is one image/mask pair.
type Sample struct {
	// ID is the file stem, unique within a split.
	ID string
	// Image and Mask are file paths; Mask is "" when no mask file was found.
	Image, Mask string
	// Group is the patient or subject the sample belongs to, when known
	// (the case of a slice of a 3-D volume).
	Group string
	// Channels, when the input is stored one channel per file (nnU-Net's
	// CASE_0000, CASE_0001, ...; a data list's list of images), holds every
	// channel's file in order, Image being the first; ReadSampleImage
	// merges them.
	Channels []string
}

// Dataset is an opened data set directory.
type Dataset struct {
	Dir    string
	Layout string
	// Manifest is dataset.json, or nil when the directory has none.
	Manifest *Manifest
	splits   map[string][]Sample
	// problems found while opening (e.g. list entries whose image is
	// missing), reported by Check.
	problems []Issue
}

// Open reads a data set with OpenWith's defaults.
func Open(dir string) (*Dataset, error) { return OpenWith(dir, OpenOptions{}) }

// OpenOptions choose how a data set is opened.
type OpenOptions struct {
	// Folds, when positive, splits the training cases of a layout without
	// a validation split of its own (nnU-Net raw, a data list without
	// "validation") into that many cross-validation folds; 0 means
	// DefaultFolds there. The project's and the reference layout have
	// their own train and val splits and refuse it.
	Folds int
	// Fold is the fold held out as the val split, in [0, Folds).
	Fold int
}

// OpenWith reads a data set: a directory in the project's layout, the
// reference JMedSeg layout or nnU-Net v2's raw layout, or a MONAI-style
// data list (a .json file, or a directory whose dataset.json has a
// "training" list, as the Medical Segmentation Decathlon's). See README.md.
// It does not decode images; use Check to validate them.
func OpenWith(dir string, opts OpenOptions) (*Dataset, error) {
	if opts.Folds < 0 || opts.Fold < 0 || (opts.Folds > 0 && opts.Fold >= opts.Folds) || (opts.Folds == 0 && opts.Fold > 0 && opts.Fold >= DefaultFolds) {
		return nil, fmt.Errorf("%s: fold %d of %d: want 0 <= fold < folds", dir, opts.Fold, max(opts.Folds, DefaultFolds))
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if strings.EqualFold(filepath.Ext(dir), ".json") {
			return openDataList(dir, opts)
		}
		return nil, fmt.Errorf("%s: not a directory (nor a .json data list)", dir)
	}
	if kind, err := manifestKind(dir); err != nil {
		return nil, err
	} else if kind != "" {
		switch kind {
		case LayoutNNUNet:
			return openNNUNet(dir, opts)
		case LayoutDataList:
			return openDataList(filepath.Join(dir, ManifestFile), opts)
		}
	}
	explicit := opts.Folds > 0 || opts.Fold > 0
	if explicit {
		return nil, fmt.Errorf("%s has its own train and val splits: --fold and --folds apply to nnU-Net raw data sets and data lists", dir)
	}
	refs, _ := filepath.Glob(filepath.Join(dir, "*_label.json"))
	if len(refs) > 0 {
		if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
			return openReference(dir, refs)
		}
	}
	return openJMedSeg(dir)
}

// Splits returns the split names in a stable order: train, val, test first,
// then the others alphabetically.
func (d *Dataset) Splits() []string {
	names := make([]string, 0, len(d.splits))
	for s := range d.splits {
		names = append(names, s)
	}
	rank := func(s string) int {
		if i := slices.Index([]string{"train", "val", "test"}, s); i >= 0 {
			return i
		}
		return 3
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return names
}

// Split returns the samples of one split, sorted by ID. A split with two
// images (or masks) of one file stem, or with an image in a format this
// package does not read, is an error naming the files: using one of them
// silently would train or test on other data than the person meant (data
// check reports the same).
func (d *Dataset) Split(name string) ([]Sample, error) {
	s, ok := d.splits[name]
	if !ok {
		return nil, fmt.Errorf("%s: no split %q (have %s)", d.Dir, name, strings.Join(d.Splits(), ", "))
	}
	var bad []string
	for _, p := range d.problems {
		if p.Split == name && (p.Kind == IssueDuplicate || p.Kind == IssueUnsupported || p.Kind == IssueChannels) {
			bad = append(bad, p.String())
		}
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 3 {
			more = fmt.Sprintf("; and %d more (jmedseg data check %s lists them)", len(bad)-3, d.Dir)
			bad = bad[:3]
		}
		return nil, fmt.Errorf("%s: split %q: %s%s", d.Dir, name, strings.Join(bad, "; "), more)
	}
	return slices.Clone(s), nil
}

// NumClasses returns the number of classes from dataset.json, or 0 when it
// is unknown.
func (d *Dataset) NumClasses() int {
	if d.Manifest == nil {
		return 0
	}
	return len(d.Manifest.Classes)
}

var imageExts = []string{".png", ".jpg", ".jpeg", ".npy", ".nii.gz", ".nii", ".dcm", ".nrrd", ".nhdr", ".mha", ".mhd"}
var maskExts = []string{".png", ".npy", ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"}

// unsupportedExts are image formats this package does not read: such a
// file in images/ or masks/ is reported, not silently left out.
var unsupportedExts = map[string]string{".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF", ".webp": "WebP",
	".hdr": "Analyze/NIfTI pair", ".img": "Analyze/NIfTI pair",
	".jp2": "JPEG 2000", ".dicom": "DICOM (name it .dcm)"}

// unsupported names the format of a file this package cannot read, or "".
func unsupported(name string) string {
	return unsupportedExts[strings.ToLower(filepath.Ext(name))]
}

func unsupportedIssue(split, path string) Issue {
	f := unsupported(path)
	return Issue{Split: split, File: path, Kind: IssueUnsupported,
		Message: fmt.Sprintf("%s is not a format jmedseg reads: convert it to PNG (or NPY/NIfTI for 16-bit or float data), or move it out of the data set", f)}
}

func stem(name string) (string, bool) {
	lower := strings.ToLower(name)
	for _, e := range imageExts {
		if strings.HasSuffix(lower, e) {
			return name[:len(name)-len(e)], true
		}
	}
	return "", false
}

func openJMedSeg(dir string) (*Dataset, error) {
	d := &Dataset{Dir: dir, Layout: LayoutJMedSeg, splits: map[string][]Sample{}}
	m, err := ReadManifest(dir)
	switch {
	case err == nil:
		d.Manifest = m
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		split := e.Name()
		imgDir := filepath.Join(dir, split, "images")
		if st, err := os.Stat(imgDir); err != nil || !st.IsDir() {
			continue
		}
		samples, problems, err := pairDir(split, imgDir, filepath.Join(dir, split, "masks"))
		if err != nil {
			return nil, err
		}
		d.splits[split] = samples
		d.problems = append(d.problems, problems...)
	}
	if len(d.splits) == 0 {
		return nil, fmt.Errorf("%s: no data set found: want {split}/images/ directories or {split}_label.json files", dir)
	}
	return d, nil
}

// pairDir pairs images with masks by file stem.
func pairDir(split, imgDir, maskDir string) ([]Sample, []Issue, error) {
	imgs, err := os.ReadDir(imgDir)
	if err != nil {
		return nil, nil, err
	}
	var problems []Issue
	masks := map[string]string{}
	if ms, err := os.ReadDir(maskDir); err == nil {
		for _, e := range ms {
			p := filepath.Join(maskDir, e.Name())
			if e.IsDir() {
				continue
			}
			s, ok := stem(e.Name())
			if !ok {
				if unsupported(e.Name()) != "" {
					problems = append(problems, unsupportedIssue(split, p))
				}
				continue
			}
			if other, dup := masks[s]; dup {
				problems = append(problems, Issue{Split: split, File: p, Kind: IssueDuplicate,
					Message: fmt.Sprintf("another mask, %s, has the same name %q: keep one", other, s)})
				continue
			}
			masks[s] = p
		}
	}
	var out []Sample
	seen := map[string]string{}
	for _, e := range imgs {
		if e.IsDir() {
			continue
		}
		p := filepath.Join(imgDir, e.Name())
		s, ok := stem(e.Name())
		if !ok {
			if unsupported(e.Name()) != "" {
				problems = append(problems, unsupportedIssue(split, p))
			}
			continue
		}
		if other, dup := seen[s]; dup {
			problems = append(problems, Issue{Split: split, File: p, Kind: IssueDuplicate,
				Message: fmt.Sprintf("another image, %s, has the same name %q: keep one", other, s)})
			continue
		}
		seen[s] = p
		out = append(out, Sample{ID: s, Image: p, Mask: masks[s]})
	}
	for s, p := range masks {
		if _, ok := seen[s]; !ok {
			problems = append(problems, Issue{Split: split, File: p, Kind: IssueMissingImage,
				Message: "mask has no image"})
		}
	}
	slices.SortFunc(out, func(a, b Sample) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(problems, func(a, b Issue) int { return strings.Compare(a.File, b.File) })
	return out, problems, nil
}

// referenceList is {person: {ct: {"list": [name.npy, ...]}}}.
type referenceList map[string]map[string]struct {
	List []string `json:"list"`
}

func openReference(dir string, files []string) (*Dataset, error) {
	d := &Dataset{Dir: dir, Layout: LayoutReference, splits: map[string][]Sample{}}
	for _, f := range files {
		split := strings.TrimSuffix(filepath.Base(f), "_label.json")
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var lst referenceList
		if err := json.Unmarshal(b, &lst); err != nil {
			return nil, fmt.Errorf("%s: corrupt JSON: want {person: {ct: {\"list\": [name.npy, ...]}}}: %w", f, err)
		}
		var samples []Sample
		listed := map[string]string{}
		for person, cts := range lst {
			for _, ct := range cts {
				for _, name := range ct.List {
					s := Sample{ID: strings.TrimSuffix(name, filepath.Ext(name)), Group: person}
					if other, dup := listed[s.ID]; dup {
						d.problems = append(d.problems, Issue{Split: split, File: filepath.Join(dir, "data", s.ID), Kind: IssueDuplicate,
							Message: fmt.Sprintf("%s lists %q twice (under %s and %s): keep one", filepath.Base(f), s.ID, other, person)})
						continue
					}
					listed[s.ID] = person
					s.Mask = filepath.Join(dir, "label", s.ID+".npy")
					for _, ext := range []string{".jpg", ".png", ".jpeg", ".npy"} {
						p := filepath.Join(dir, "data", s.ID+ext)
						if _, err := os.Stat(p); err == nil {
							s.Image = p
							break
						}
					}
					if s.Image == "" {
						d.problems = append(d.problems, Issue{Split: split, File: filepath.Join(dir, "data", s.ID+".jpg"),
							Kind: IssueMissingImage, Message: fmt.Sprintf("listed in %s but no data/%s.jpg or .png", filepath.Base(f), s.ID)})
						continue
					}
					if _, err := os.Stat(s.Mask); err != nil {
						s.Mask = ""
					}
					samples = append(samples, s)
				}
			}
		}
		slices.SortFunc(samples, func(a, b Sample) int { return strings.Compare(a.ID, b.ID) })
		d.splits[split] = samples
	}
	return d, nil
}

// ImageSize is the data set's image size, {height, width}: dataset.json's,
// or the first training image's.
func (d *Dataset) ImageSize() ([2]int, error) {
	if m := d.Manifest; m != nil && m.Width > 0 && m.Height > 0 {
		return [2]int{m.Height, m.Width}, nil
	}
	s, err := d.Split("train")
	if err != nil {
		return [2]int{}, err
	}
	if len(s) == 0 {
		return [2]int{}, errors.New("the train split is empty")
	}
	img, err := ReadImage(s[0].Image)
	if err != nil {
		return [2]int{}, err
	}
	b := img.Bounds()
	return [2]int{b.Dy(), b.Dx()}, nil
}
