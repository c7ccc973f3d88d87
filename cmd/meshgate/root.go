package main

import (
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitCode is an error that only carries a process exit status; its message was already printed.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

func asExit(err error, ec *exitCode) bool { return errors.As(err, ec) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "meshgate",
		Short:         "An API gateway and service mesh in one program",
		SilenceUsage:  true,
		SilenceErrors: true, // main prints them, except exit codes whose message is already out
		Version:       version,
	}
	root.AddCommand(newGatewayCommand(), newSidecarCommand(), newValidateCommand(), newUpCommand(), newDemoServiceCommand(), newTapCommand(), newTopCommand(), newExplainCommand(), newImpactCommand(), newControlCommand(),
		newApplyCommand(), newGetCommand(), newDeleteCommand(), newHistoryCommand(), newRollbackCommand())
	return root
}

// newLogger returns the process logger: JSON lines on stderr at the given level.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
