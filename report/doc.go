// Package report writes what a training run leaves behind for people to look
// at: loss and Dice curves as PNG line plots, overlays of truth and
// prediction outlines on the image, and report.md / report.json with the
// per-class scores of each test split (foreground mean first), surface
// distances, the curves and the best and worst cases.
//
// Everything is pure Go (image/draw and golang.org/x/image/font/basicfont);
// every file is written atomically, through a temporary file in the same
// directory that is renamed into place, so a reader never sees half a file.
package report
