// Command meshgate is an API gateway and service mesh in one program.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		var ec exitCode
		if asExit(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "meshgate:", err)
		os.Exit(1)
	}
}
