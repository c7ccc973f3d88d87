package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/demo"
	"github.com/meshgate/meshgate/internal/gateway"
)

func newUpCommand() *cobra.Command {
	var listen, adminAddr, logLevel string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a local demo: the gateway with a built-in config in front of two built-in services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			for _, a := range []string{listen, adminAddr} {
				if ln, err := net.Listen("tcp", a); err != nil {
					return fmt.Errorf("%s is taken (%v); choose other ports with --listen and --admin", a, err)
				} else {
					_ = ln.Close()
				}
			}
			svcs, err := demo.Start(listen, adminAddr)
			if err != nil {
				return err
			}
			defer svcs.Close()
			dir, err := os.MkdirTemp("", "meshgate-up-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			path, err := svcs.WriteConfig(dir)
			if err != nil {
				return err
			}
			return runGateway(cmd.Context(), path, log, func(*gateway.Gateway, *admin.Server) {
				fmt.Fprintln(cmd.ErrOrStderr(), svcs.Instructions(path))
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "gateway listener address")
	cmd.Flags().StringVar(&adminAddr, "admin", "127.0.0.1:9901", "admin API address")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level for meshgate's own logs")
	return cmd
}
