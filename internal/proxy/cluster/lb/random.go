package lb

// random picks a target at random in proportion to its weight.
type random struct {
	choice weightedChoice
}

func newRandom(w []uint64) *random {
	return &random{choice: newWeightedChoice(w)}
}

// Pick implements Balancer.
func (r *random) Pick(uint64, bool) int {
	return r.choice.draw()
}
