package metric_test

import (
	"fmt"

	"github.com/jmedseg/jmedseg/metric"
)

func ExampleEvaluator() {
	e := metric.NewEvaluator(2, []string{"background", "brain"}, -1)
	truth := []int64{
		0, 1, 1, 0,
		0, 1, 1, 0,
	}
	pred := []int64{
		0, 1, 1, 1,
		0, 1, 0, 0,
	}
	if err := e.Add("slice1", "subject1", pred, truth, 2, 4, [2]float64{1, 1}); err != nil {
		fmt.Println(err)
	}
	r := e.Report()
	fmt.Printf("foreground Dice %.3f, all-class Dice %.3f\n", r.Split.Foreground.Dice, r.Split.AllClasses.Dice)
	// Output: foreground Dice 0.750, all-class Dice 0.750
}
