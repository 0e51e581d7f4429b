package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// manifestKind tells from dir/dataset.json which layout it describes:
// LayoutNNUNet (it has "file_ending" or "channel_names"), LayoutDataList (a
// "training" list, as the Decathlon's and nnU-Net v1's), or "" (the
// project's own, or no dataset.json).
func manifestKind(dir string) (string, error) {
	p := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(b, &keys) != nil {
		return "", nil // the project's reader reports the corrupt JSON
	}
	_, ending := keys["file_ending"]
	_, names := keys["channel_names"]
	_, training := keys["training"]
	switch {
	case ending || names:
		return LayoutNNUNet, nil
	case training:
		return LayoutDataList, nil
	}
	return "", nil
}

// nnunetJSON is nnU-Net v2's dataset.json.
type nnunetJSON struct {
	Name         string                     `json:"name"`
	Description  string                     `json:"description"`
	ChannelNames map[string]string          `json:"channel_names"`
	Modality     map[string]string          `json:"modality"` // nnU-Net v1's name for it
	Labels       map[string]json.RawMessage `json:"labels"`
	NumTraining  *int                       `json:"numTraining"`
	FileEnding   string                     `json:"file_ending"`
}

// nnunetEndings are the file endings nnU-Net raw data sets use that
// jmedseg reads.
var nnunetEndings = []string{".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png"}

// openNNUNet reads an nnU-Net v2 raw data set: imagesTr/CASE_XXXX<ending>
// (one file per channel), labelsTr/CASE<ending>, imagesTs/ (and labelsTs/
// when present). The training cases are split into folds (train and val);
// imagesTs is the test split. 3-D NIfTI cases become their axial slices.
func openNNUNet(dir string, opts OpenOptions) (*Dataset, error) {
	mf := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(mf)
	if err != nil {
		return nil, err
	}
	var j nnunetJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: corrupt nnU-Net dataset.json: %w", mf, err)
	}
	if j.FileEnding == "" {
		return nil, fmt.Errorf("%s: nnU-Net dataset.json without \"file_ending\" (e.g. \".nii.gz\" or \".png\")", mf)
	}
	if !slices.Contains(nnunetEndings, strings.ToLower(j.FileEnding)) {
		return nil, fmt.Errorf("%s: file_ending %q: jmedseg reads nnU-Net data sets of %s files (convert others, e.g. .tif or .gipl, to .nii.gz)",
			mf, j.FileEnding, strings.Join(nnunetEndings, ", "))
	}
	chans := j.ChannelNames
	if len(chans) == 0 {
		chans = j.Modality
	}
	if len(chans) == 0 {
		return nil, fmt.Errorf("%s: no \"channel_names\": nnU-Net's dataset.json names each input channel, e.g. {\"0\": \"T2\"}", mf)
	}
	for k := range chans {
		if n, err := strconv.Atoi(k); err != nil || n < 0 || n >= len(chans) {
			return nil, fmt.Errorf("%s: channel_names key %q: want the channel numbers 0 to %d", mf, k, len(chans)-1)
		}
	}
	classes, err := nnunetClasses(mf, j.Labels)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Name: j.Name, Description: j.Description, Task: "nnunet", Classes: classes, Channels: len(chans)}
	d := &Dataset{Dir: dir, Layout: LayoutNNUNet, Manifest: m, splits: map[string][]Sample{}}
	if len(chans) > MaxChannels { // any other count trains: 3 files as RGB, others as Planes
		d.problems = append(d.problems, Issue{Split: "train", File: mf, Kind: IssueChannels,
			Message: fmt.Sprintf("%d input channels: jmedseg takes at most %d", len(chans), MaxChannels)})
	}
	cases, problems, err := nnunetCases(dir, "imagesTr", "labelsTr", j.FileEnding, len(chans))
	if err != nil {
		return nil, err
	}
	d.problems = append(d.problems, problems...)
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no training cases in imagesTr/ (want CASE_0000%s files)", dir, j.FileEnding)
	}
	if j.NumTraining != nil && *j.NumTraining != len(cases) {
		d.problems = append(d.problems, Issue{File: mf, Kind: IssueManifest,
			Message: fmt.Sprintf("numTraining is %d but imagesTr/ holds %d cases", *j.NumTraining, len(cases))})
	}
	if err := d.assignFolds(cases, opts, nil); err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(dir, "imagesTs")); err == nil && st.IsDir() {
		test, problems, err := nnunetCases(dir, "imagesTs", "labelsTs", j.FileEnding, len(chans))
		if err != nil {
			return nil, err
		}
		for i := range problems {
			problems[i].Split = "test"
		}
		d.problems = append(d.problems, problems...)
		d.splits["test"] = samplesOf(test, &d.problems, "test")
	}
	return d, nil
}

// nnunetClasses turns nnU-Net's labels ({"background": 0, "liver": 1})
// into class names by id. The ids must run from 0 without gaps; "ignore"
// is left out of the classes (train with a loss that ignores it, e.g.
// --loss 'ce(ignore=K)'); region-based labels (lists of ids) are refused.
func nnunetClasses(mf string, labels map[string]json.RawMessage) ([]string, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("%s: no \"labels\": nnU-Net's dataset.json maps each class name to its id, e.g. {\"background\": 0, \"tumour\": 1}", mf)
	}
	byID := map[int]string{}
	for name, raw := range labels {
		var id int
		if err := json.Unmarshal(raw, &id); err != nil {
			var ids []int
			if json.Unmarshal(raw, &ids) == nil {
				return nil, fmt.Errorf("%s: label %q is a region (%v): region-based nnU-Net labels are not supported; give each class one id", mf, name, ids)
			}
			return nil, fmt.Errorf("%s: label %q: want an integer id, got %s", mf, name, raw)
		}
		if name == "ignore" {
			continue
		}
		if other, dup := byID[id]; dup {
			return nil, fmt.Errorf("%s: labels %q and %q have the same id %d", mf, other, name, id)
		}
		byID[id] = name
	}
	out := make([]string, len(byID))
	for id, name := range byID {
		if id < 0 || id >= len(out) {
			return nil, fmt.Errorf("%s: label %q has id %d: nnU-Net label ids run from 0 (background) to %d without gaps", mf, name, id, len(out)-1)
		}
		out[id] = name
	}
	return out, nil
}

// nnCase is one case: its channel files in order and its label file ("" if
// none).
type nnCase struct {
	id    string
	chans []string
	label string
}

// nnunetCases pairs the CASE_XXXX channel files of imgSub with the labels
// in lblSub.
func nnunetCases(dir, imgSub, lblSub, ending string, want int) ([]nnCase, []Issue, error) {
	imgDir := filepath.Join(dir, imgSub)
	entries, err := os.ReadDir(imgDir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	var problems []Issue
	files := map[string]map[int]string{}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(imgDir, name)
		if e.IsDir() {
			continue
		}
		if !strings.HasSuffix(name, ending) {
			if unsupported(name) != "" || FormatOf(name) != "" {
				problems = append(problems, Issue{Split: "train", File: p, Kind: IssueUnsupported,
					Message: fmt.Sprintf("not a %s file, the data set's file_ending: convert it or move it out", ending)})
			}
			continue
		}
		st := strings.TrimSuffix(name, ending)
		u := strings.LastIndexByte(st, '_')
		ch, err := strconv.Atoi(st[u+1:])
		if u <= 0 || len(st)-u-1 != 4 || err != nil {
			problems = append(problems, Issue{Split: "train", File: p, Kind: IssueUnsupported,
				Message: "not named CASE_XXXX" + ending + " (XXXX: the 4-digit channel number, e.g. _0000)"})
			continue
		}
		id := st[:u]
		if files[id] == nil {
			files[id] = map[int]string{}
		}
		files[id][ch] = p
	}
	labels := map[string]string{}
	if les, err := os.ReadDir(filepath.Join(dir, lblSub)); err == nil {
		for _, e := range les {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ending) {
				labels[strings.TrimSuffix(e.Name(), ending)] = filepath.Join(dir, lblSub, e.Name())
			}
		}
	}
	var out []nnCase
	for id, chs := range files {
		c := nnCase{id: id, label: labels[id]}
		missing := -1
		for i := range max(len(chs), want) {
			p, ok := chs[i]
			if !ok {
				if missing < 0 && (i < len(chs) || len(chs) > 1 || want != 3 || !strings.EqualFold(ending, ".png")) { // one RGB PNG may hold 3
					missing = i
				}
				continue
			}
			c.chans = append(c.chans, p)
		}
		switch {
		case missing >= 0:
			problems = append(problems, Issue{Split: "train", File: filepath.Join(imgDir, fmt.Sprintf("%s_%04d%s", id, missing, ending)), Kind: IssueChannels,
				Message: fmt.Sprintf("case %s: channel file %04d is missing (channel_names lists %d channels; the case has %d files)", id, missing, want, len(chs))})
			continue
		case len(c.chans) != want && !(len(c.chans) == 1 && want == 3 && strings.EqualFold(ending, ".png")):
			problems = append(problems, Issue{Split: "train", File: c.chans[0], Kind: IssueChannels,
				Message: fmt.Sprintf("case %s has %d channel files, channel_names lists %d", id, len(c.chans), want)})
			continue
		}
		out = append(out, c)
	}
	for id, p := range labels {
		if _, ok := files[id]; !ok {
			problems = append(problems, Issue{Split: "train", File: p, Kind: IssueMissingImage,
				Message: fmt.Sprintf("label has no image %s_0000%s in %s", id, ending, imgSub)})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	slices.SortFunc(problems, func(a, b Issue) int { return strings.Compare(a.File, b.File) })
	return out, problems, nil
}

// caseSamples turns one case into samples: itself when its files are 2-D,
// one per axial slice when they are 3-D volumes (NIfTI, NRRD, MetaImage;
// Group the case).
func caseSamples(c nnCase, split string, problems *[]Issue) []Sample {
	one := Sample{ID: c.id, Image: c.chans[0], Mask: c.label, Group: c.id}
	if len(c.chans) > 1 {
		one.Channels = c.chans
	}
	if !IsVolumeFormat(FormatOf(c.chans[0])) {
		return []Sample{one}
	}
	depth, is3D, err := AxialDepth(c.chans[0])
	if err != nil {
		*problems = append(*problems, Issue{Split: split, File: c.chans[0], Kind: IssueUnreadable, Message: unwrapPath(err, c.chans[0])})
		return nil
	}
	if !is3D {
		return []Sample{one}
	}
	for _, p := range append(slices.Clone(c.chans[1:]), c.label) {
		if p == "" {
			continue
		}
		dp, _, err := AxialDepth(p)
		switch {
		case err != nil:
			*problems = append(*problems, Issue{Split: split, File: p, Kind: IssueUnreadable, Message: unwrapPath(err, p)})
		case dp != depth:
			*problems = append(*problems, Issue{Split: split, File: p, Kind: IssueSize,
				Message: fmt.Sprintf("%d axial slices, but %s has %d", dp, c.chans[0], depth)})
		}
	}
	out := make([]Sample, depth)
	for k := range depth {
		s := Sample{ID: fmt.Sprintf("%s_z%03d", c.id, k), Image: SlicePath(c.chans[0], k), Group: c.id}
		if c.label != "" {
			s.Mask = SlicePath(c.label, k)
		}
		if len(c.chans) > 1 {
			for _, p := range c.chans {
				s.Channels = append(s.Channels, SlicePath(p, k))
			}
		}
		out[k] = s
	}
	return out
}

// unwrapPath drops a leading "path: " from err's message.
func unwrapPath(err error, path string) string {
	return strings.TrimPrefix(err.Error(), path+": ")
}

// samplesOf is the samples of cases, in case order.
func samplesOf(cases []nnCase, problems *[]Issue, split string) []Sample {
	var out []Sample
	for _, c := range cases {
		out = append(out, caseSamples(c, split, problems)...)
	}
	return out
}

// splitsFile is nnU-Net's splits_final.json: the cases of every fold. When
// a raw data set directory has one (copied from nnUNet_preprocessed), its
// folds are used as they are.
const splitsFile = "splits_final.json"

// assignFolds makes the train and val splits of cases: fold opts.Fold of
// opts.Folds (DefaultFolds when 0) held out. given maps cases to folds
// where the data says them (a data list's "fold" keys); else
// splits_final.json in the directory, else KFold.
func (d *Dataset) assignFolds(cases []nnCase, opts OpenOptions, given map[string]int) error {
	k := opts.Folds
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = c.id
	}
	var fold map[string]int
	sf := filepath.Join(d.Dir, splitsFile)
	if d.Layout == LayoutDataList {
		sf = filepath.Join(filepath.Dir(d.Dir), splitsFile)
	}
	switch b, err := os.ReadFile(sf); {
	case given != nil:
		n := 0
		for _, f := range given {
			n = max(n, f+1)
		}
		if k > 0 && k != n {
			return fmt.Errorf("%s: its entries give %d folds, --folds asks for %d", d.Dir, n, k)
		}
		k, fold = n, given
	case err == nil:
		var sp []struct {
			Train []string `json:"train"`
			Val   []string `json:"val"`
		}
		if err := json.Unmarshal(b, &sp); err != nil {
			return fmt.Errorf("%s: corrupt JSON: want nnU-Net's [{\"train\": [...], \"val\": [...]}, ...]: %w", sf, err)
		}
		if k > 0 && k != len(sp) {
			return fmt.Errorf("%s holds %d folds, --folds asks for %d", sf, len(sp), k)
		}
		k, fold = len(sp), map[string]int{}
		for f, s := range sp {
			for _, id := range s.Val {
				fold[id] = f
			}
		}
		for _, id := range ids {
			if _, ok := fold[id]; !ok {
				return fmt.Errorf("%s: case %s is in no fold's val list", sf, id)
			}
		}
	default:
		if k == 0 { // nnU-Net's 5, or one fold per case when there are fewer
			k = min(DefaultFolds, max(len(ids), 2))
		}
		if k > len(ids) {
			return fmt.Errorf("%s: %d folds of %d training cases: want at most one fold per case", d.Dir, k, len(ids))
		}
		if fold, err = foldOf(ids, k); err != nil {
			return fmt.Errorf("%s: %w", d.Dir, err)
		}
	}
	if opts.Fold >= k {
		return fmt.Errorf("%s: fold %d of %d: want 0 <= fold < %d", d.Dir, opts.Fold, k, k)
	}
	var tr, va []nnCase
	for _, c := range cases {
		if fold[c.id] == opts.Fold {
			va = append(va, c)
		} else {
			tr = append(tr, c)
		}
	}
	d.splits["train"] = samplesOf(tr, &d.problems, "train")
	d.splits["val"] = samplesOf(va, &d.problems, "val")
	if d.Manifest == nil {
		return nil
	}
	d.Manifest.Split = &SplitInfo{Method: "k-fold by case", Params: map[string]any{"fold": opts.Fold, "folds": k},
		Counts: map[string]int{"train_cases": len(tr), "val_cases": len(va)}}
	return nil
}
