package loss

// Names lists the loss names Parse accepts.
var Names = []string{"ce", "iou", "dice", "tversky", "focal", "bce", "dualterm"}

// Usage is the one-line description of a loss spec, for a --loss flag.
const Usage = "loss spec: ce, iou, dice, tversky, focal, bce, dualterm, with options in parentheses and " +
	"weighted sums, e.g. ce:0.5+dice(persample,nobg):0.5 (the list: jmedseg train --help)"

// Help describes every loss and option of the spec syntax (Parse), for the
// command line's help.
const Help = `Loss specs (--loss): terms joined by +, each NAME(OPTIONS):WEIGHT, e.g. ce:0.8+iou:0.2 or
focal(gamma=2,alpha=0.25)+dice(persample,nobg). Logits [N,C,H,W]; targets the class map.

  ce        softmax cross-entropy, mean over pixels
            weight=W0/W1/.. (one per class), ignore=LABEL, smoothing=S in [0,1)
  iou       1 − (Σpt+s)/(Σp+Σt−Σpt+s), softmax p, one-hot t
  dice      1 − (2Σpt+s)/(Σp+Σt+s)
  tversky   1 − (Σpt+s)/(Σpt+α·Σp(1−t)+β·Σ(1−p)t+s); alpha=0.3 (false positives), beta=0.7
            (false negatives); alpha=beta=1 is iou
            iou, dice, tversky: by default one ratio pooled over every class, pixel and image of the
            batch (the reference's form); persample: one per image, mean over images; perclass: one
            per class, mean over classes; nobg: leave class 0 out; smooth=s (default 1);
            sigmoid: one sigmoid per channel (multi-label); ignore=LABEL
  focal     α_y·(1−p_y)^γ·(−log p_y)·scale, mean over pixels (Lin et al., MONAI)
            gamma=2; alpha=0.5: α for the foreground classes, 1−α for the background (class 0),
            or alpha=A0/A1/.. one per class, or alpha=none; scale=1, a plain factor on the loss
            (what alpha meant before); sigmoid: one sigmoid per channel, α on positives, 1−α on
            negatives, mean over pixels and channels; ignore=LABEL
  bce       binary cross-entropy on logits, one sigmoid per channel, mean; ignore=LABEL
  dualterm  the shape-aware Dual-Term loss (Huang, Zhou, Tao, ISBI 2021, as we read it): per image and
            foreground class, soft Dice + lambda·Σ|D−p|/(Σp+s), D = t·σ((1−d/max d)/k) from the
            distance d to the class boundary; lambda=1, k=0.2, smooth=s (default 1), ignore=LABEL

Sigmoid forms take a class map (one-hot over the channels; with one channel the binary mask) or,
from Go, a {0,1} label map [N,L,H,W].`
