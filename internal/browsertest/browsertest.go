// Package browsertest starts the headless Chromium that the page tests
// (serve's and report's) drive with chromedp.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Chromium finds a Chromium to drive: $JMEDSEG_CHROMIUM, else Debian's
// chromium (scripts/setup.sh installs it) or another Chrome on the PATH;
// "" when there is none.
func Chromium() string {
	if p := os.Getenv("JMEDSEG_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start gives a chromedp context on a fresh headless Chromium with a
// window of w×h pixels, closed when the test ends, and the browser's path
// (for messages). Without a Chromium the test is skipped, or fails under
// CI=1, where scripts/setup.sh must have installed one.
func Start(t *testing.T, w, h int) (context.Context, string) {
	t.Helper()
	exe := Chromium()
	if exe == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium on this CI machine: scripts/setup.sh installs Debian's chromium")
		}
		t.Skip("no Chromium here (scripts/setup.sh installs Debian's chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(w, h))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return bctx, exe
}

// ArtifactDir is where a browser test leaves its screenshots:
// $JMEDSEG_ARTIFACTS, else bin/test-artifacts of the repository (the test
// runs in its package's directory, one level down).
func ArtifactDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("JMEDSEG_ARTIFACTS")
	if d == "" {
		d = filepath.Join("..", "bin", "test-artifacts")
	}
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}
