package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// dataList is a MONAI-style data list (monai.data.load_decathlon_datalist):
// "training" entries of an image (a path, or a list of one path per
// channel) and a label, optional "validation" entries and "test" entries
// (paths or entries). The Decathlon's dataset.json adds "labels" ({"0":
// "background", ...}) and "modality"; MONAI's Auto3DSeg data lists add a
// "fold" to each training entry.
type dataList struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
	Modality    map[string]string `json:"modality"`
	Training    []json.RawMessage `json:"training"`
	Validation  []json.RawMessage `json:"validation"`
	Test        []json.RawMessage `json:"test"`
}

// listEntry is one entry of a data list.
type listEntry struct {
	Image json.RawMessage `json:"image"`
	Label string          `json:"label"`
	Fold  *int            `json:"fold"`
}

// openDataList reads a data list: paths are relative to the list's
// directory (MONAI's default base_dir). Splits: train and val (the
// "validation" list, else the list's "fold" keys, else KFold by case) and
// test. A case is an entry; its id is the first image's file stem.
func openDataList(file string, opts OpenOptions) (*Dataset, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var l dataList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: corrupt data list: want {\"training\": [{\"image\": ..., \"label\": ...}, ...]}: %w", file, err)
	}
	if len(l.Training) == 0 {
		return nil, fmt.Errorf("%s: the data list has no \"training\" entries", file)
	}
	base := filepath.Dir(file)
	d := &Dataset{Dir: file, Layout: LayoutDataList, splits: map[string][]Sample{}}
	if len(l.Labels) > 0 {
		classes := make([]string, len(l.Labels))
		for k, v := range l.Labels {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 || id >= len(classes) {
				return nil, fmt.Errorf("%s: labels key %q: want the class ids 0 to %d", file, k, len(classes)-1)
			}
			classes[id] = v
		}
		d.Manifest = &Manifest{Name: l.Name, Description: l.Description, Task: "datalist", Classes: classes, Channels: len(l.Modality)}
	}
	train, given, err := listCases(file, base, "training", l.Training, d)
	if err != nil {
		return nil, err
	}
	switch {
	case len(l.Validation) > 0:
		if opts.Folds > 0 || opts.Fold > 0 || given != nil {
			return nil, fmt.Errorf("%s has a \"validation\" list: --fold and --folds (and \"fold\" keys) apply to a list without one", file)
		}
		val, _, err := listCases(file, base, "validation", l.Validation, d)
		if err != nil {
			return nil, err
		}
		d.splits["train"] = samplesOf(train, &d.problems, "train")
		d.splits["val"] = samplesOf(val, &d.problems, "val")
	default:
		if err := d.assignFolds(train, opts, given); err != nil {
			return nil, err
		}
	}
	if len(l.Test) > 0 {
		test, _, err := listCases(file, base, "test", l.Test, d)
		if err != nil {
			return nil, err
		}
		d.splits["test"] = samplesOf(test, &d.problems, "test")
	}
	return d, nil
}

// listCases reads the entries of one list. given holds each case's "fold"
// when every entry has one (nil when none has; some but not all is an
// error).
func listCases(file, base, key string, raw []json.RawMessage, d *Dataset) ([]nnCase, map[string]int, error) {
	var out []nnCase
	given := map[string]int{}
	seen := map[string]string{}
	split := map[string]string{"training": "train", "validation": "val", "test": "test"}[key]
	for i, r := range raw {
		var e listEntry
		var path string
		if json.Unmarshal(r, &path) == nil { // "test": ["a.nii.gz", ...]
			e.Image = r
		} else if err := json.Unmarshal(r, &e); err != nil {
			return nil, nil, fmt.Errorf("%s: %s entry %d: want {\"image\": ..., \"label\": ...} or a path: %w", file, key, i, err)
		}
		var imgs []string
		if json.Unmarshal(e.Image, &path) == nil {
			imgs = []string{path}
		} else if err := json.Unmarshal(e.Image, &imgs); err != nil || len(imgs) == 0 {
			return nil, nil, fmt.Errorf("%s: %s entry %d: \"image\" must be a path or a list of paths (one per channel)", file, key, i)
		}
		c := nnCase{}
		for _, p := range imgs {
			c.chans = append(c.chans, joinDir(base, p))
		}
		if e.Label != "" {
			c.label = joinDir(base, e.Label)
		}
		st, ok := stem(filepath.Base(c.chans[0]))
		if !ok {
			return nil, nil, fmt.Errorf("%s: %s entry %d: %s is not an image format jmedseg reads (%s)", file, key, i, imgs[0], strings.Join(imageExts, ", "))
		}
		c.id = st
		for _, p := range c.chans {
			if _, err := os.Stat(p); err != nil {
				d.problems = append(d.problems, Issue{Split: split, File: p, Kind: IssueMissingImage,
					Message: fmt.Sprintf("listed in %s (%s entry %d) but not found", filepath.Base(file), key, i)})
				c.chans = nil
				break
			}
		}
		if c.chans == nil {
			continue
		}
		if c.label != "" {
			if _, err := os.Stat(c.label); err != nil {
				d.problems = append(d.problems, Issue{Split: split, File: c.label, Kind: IssueUnreadable,
					Message: fmt.Sprintf("label listed in %s (%s entry %d) but not found", filepath.Base(file), key, i)})
				c.label = ""
			}
		}
		if other, dup := seen[c.id]; dup {
			d.problems = append(d.problems, Issue{Split: split, File: c.chans[0], Kind: IssueDuplicate,
				Message: fmt.Sprintf("another entry, %s, has the same case name %q: rename one", other, c.id)})
			continue
		}
		seen[c.id] = c.chans[0]
		if e.Fold != nil {
			if *e.Fold < 0 {
				return nil, nil, fmt.Errorf("%s: %s entry %d: fold %d: want 0 or more", file, key, i, *e.Fold)
			}
			given[c.id] = *e.Fold
		}
		out = append(out, c)
	}
	if len(given) == 0 {
		given = nil
	} else if len(given) != len(out) {
		return nil, nil, fmt.Errorf("%s: %d of %d %s entries have a \"fold\": give every entry one, or none", file, len(given), len(out), key)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	slices.SortFunc(d.problems, func(a, b Issue) int { return strings.Compare(a.File, b.File) })
	return out, given, nil
}
