// Package zoo runs the model-zoo experiment: every selected model trained
// with one protocol on one data set, tested on every test split, and
// compared in one table (zoo.md, zoo.json) with figures of Dice against
// parameters and of every model's prediction on one test image.
//
// # Protocol
//
// Every model gets the same seed, epochs, batch, optimizer, learning rate
// and schedule, loss, augmentation, input size and batch cap (Protocol).
// Models differ in their reference width, so one width scale applies to
// all: width = max(1, round(DefaultWidth × scale)) (ScaleWidth), with an
// optional floor (WidthRule.Min, at most the reference width) so that the
// models with a small reference width keep a usable one. A model
// may refuse that width (a multiple of 16 for setr and the OneNet family,
// at least 16 for the SE gates of scseunet): its constructor says so, and
// ResolveWidth then takes the next width up that it builds (rounded up to
// a multiple of 2, 4, 8, … in turn), recording why in the row. A size the
// model cannot take (models.Spec.CheckSize: a multiple, a minimum) is a
// failure row, not an error; with Protocol.FitSize the model trains and is
// tested at the next size it takes instead (FitSize), recorded in its row.
//
// # Child processes
//
// Each model trains in a child process, `jmedseg train` of the same binary
// (Options.Exe, normally os.Executable()), which also tests the best
// checkpoint on every split but train and val and writes the run's report;
// then `jmedseg predict` draws its prediction for the figure. The Go API
// (train.New, train.Fit) would do the same work in-process, but a child
// process gives each row its own peak resident memory (the kernel's
// VmHWM, from the child's rusage: in one process it only ever grows), keeps
// the zoo running when one model runs out of memory or crashes libtorch,
// and frees everything a model allocated when it exits. The runs stay
// ordinary run directories (OUT/<model>/: best.safetensors,
// last.safetensors, report.md), usable with `jmedseg test` and `predict`.
//
// # Resumption
//
// A finished model's row is saved as OUT/<model>/zoo-row.json, with the
// protocol; a rerun skips it. A failed model (out of memory, a NaN loss, a
// size or width it cannot take, a timeout) gets a row that says why and the
// others go on; a rerun skips it too unless RetryFailed is set. A model
// that was interrupted (Ctrl-C, a timeout) continues exactly from its
// last.safetensors. One output directory holds one protocol: rerunning with
// another is an error that names the difference.
package zoo
