package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/config"
)

func newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file: print every error (file:line, object) and exit 1, or a summary and exit 0",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				var list config.ErrorList
				if errors.As(err, &list) {
					for _, e := range list {
						fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d error(s)\n", args[0], len(list))
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
				}
				return exitCode(1)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (version %d: %d listeners, %d routes, %d services)\n",
				args[0], cfg.Version, len(cfg.Listeners), len(cfg.Routes), len(cfg.Services))
			return nil
		},
	}
}
