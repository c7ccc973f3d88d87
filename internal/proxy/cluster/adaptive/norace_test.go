//go:build !race

package adaptive

// raceEnabled reports a build with the race detector, which slows the simulations down.
const raceEnabled = false
