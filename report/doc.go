// Package report writes what a training run leaves behind for people to look
// at: loss and Dice curves as line plots (PNG and SVG), overlays of truth and
// prediction outlines on the image, and report.md / report.json with the
// per-class scores of each test split (foreground mean first), surface
// distances, the curves and the best and worst cases. For comparisons of
// many models it draws labelled scatter plots (Scatter, e.g. Dice against
// parameters on a log axis) and small multiples of overlays (SmallMultiples).
//
// Plots are drawn by gonum.org/v1/plot (Liberation Sans, embedded); overlays
// with image/draw and golang.org/x/image/font/basicfont. Everything is pure
// Go, and every file is written atomically, through a temporary file in the
// same directory that is renamed into place, so a reader never sees half a
// file.
package report
