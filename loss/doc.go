// Package loss holds segmentation losses over logits [N,C,H,W] and int64
// class maps [N,H,W], and weighted sums of them parsed from a spec such as
// "ce:0.8+iou:0.2" (Parse; Help lists every name and option):
//
//	spec       type          what it computes
//	ce         CrossEntropy  softmax cross-entropy, mean over pixels (PyTorch's)
//	iou        Region        1 − (Σpt+s)/(Σp+Σt−Σpt+s)
//	dice       Region        1 − (2Σpt+s)/(Σp+Σt+s)
//	tversky    Region        1 − (Σpt+s)/(Σpt+α·Σp(1−t)+β·Σ(1−p)t+s)
//	focal      Focal         α_y·(1−p_y)^γ·(−log p_y), mean over pixels
//	bce        BCE           binary cross-entropy on logits, one sigmoid per channel
//	dualterm   DualTerm      per-image soft Dice + λ·a distance-map shape term
//
// The overlaps (iou, dice, tversky) pool every class, pixel and image of
// the batch into one ratio by default, the reference's form; persample
// takes one ratio per image and perclass one per class, and the loss is 1 −
// their mean. Region, Focal and BCE have a sigmoid (multi-label) form that
// takes one sigmoid per channel, with a {0,1} label map [N,L,H,W] or a class
// map as targets.
//
// The losses are checked against PyTorch formulations of them
// (internal/oracle/py/loss_oracle.py, after MONAI's for Tversky and focal)
// in float64, values and gradients with respect to the logits.
package loss
