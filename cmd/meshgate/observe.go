package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/control/telemetry"
	"github.com/meshgate/meshgate/internal/observe/record"
)

// filterFlags binds the record filter flags of tap to f.
func filterFlags(cmd *cobra.Command, f *record.Filter) {
	fl := cmd.Flags()
	fl.StringVar(&f.Service, "service", "", "only requests to this service (config name, e.g. orders or orders.shop)")
	fl.StringVar(&f.Route, "route", "", "only requests served by this route")
	fl.StringVar(&f.Consumer, "consumer", "", "only requests made for this consumer")
	fl.StringVar(&f.Status, "status", "", "only this status (503) or class (5xx)")
	fl.StringVar(&f.Proxy, "proxy", "", "only what this proxy saw")
}

// stream GETs path and calls line for every line of the answer until it ends or ctx does.
func (c *adminClient) stream(ctx context.Context, path string, line func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.server, "/")+path, nil)
	if err != nil {
		return err
	}
	if tok := os.Getenv(c.tokenEnv); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control plane at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var b [4096]byte
		n, _ := resp.Body.Read(b[:])
		return apiFailure(resp, b[:n])
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := line(sc.Bytes()); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

func newTapCommand() *cobra.Command {
	var c adminClient
	var f record.Filter
	var d time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tap",
		Short: "Watch live requests as every proxy (gateway and sidecars) sees them, through the control plane",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			q := f.Query()
			q.Set("for", d.String())
			return c.stream(ctx, "/v1/tap?"+q.Encode(), func(b []byte) error {
				if asJSON {
					fmt.Println(string(b))
					return nil
				}
				var r record.Record
				if err := json.Unmarshal(b, &r); err != nil {
					return err
				}
				fmt.Println(tapLine(&r))
				return nil
			})
		},
	}
	filterFlags(cmd, &f)
	cmd.Flags().DurationVar(&d, "for", 10*time.Minute, "how long to watch (at most 10m)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each record as JSON")
	c.flags(cmd)
	return cmd
}

// tapLine is one record on one line.
func tapLine(r *record.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-8s %s → %s %s %s %d %s", r.Time.Local().Format("15:04:05.000"), r.Direction,
		orDash(r.Source), orDash(r.Service), r.Method, r.Path, r.Status, r.Duration.Round(10*time.Microsecond))
	for _, kv := range [][2]string{{"route", r.Route}, {"reason", r.Reason}, {"consumer", r.Consumer},
		{"edge", r.EdgeRoute}, {"proxy", r.Proxy}, {"id", r.RequestID}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newTopCommand() *cobra.Command {
	var c adminClient
	var window time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "top",
		Short: "A live table of every edge of the mesh: requests per second, success rate and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			for {
				var top struct {
					Window string             `json:"window"`
					Edges  []telemetry.TopRow `json:"edges"`
				}
				if err := c.getJSON(ctx, "/v1/top?window="+window.String(), &top); err != nil {
					return err
				}
				if !once {
					fmt.Print("\033[H\033[2J")
				}
				fmt.Printf("meshgate top — last %s — %s\n\n", top.Window, time.Now().Format("15:04:05"))
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DIRECTION\tSOURCE\tSERVICE\tROUTE\tRPS\tSUCCESS\tP50\tP99")
				for _, e := range top.Edges {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%.1f%%\t%gms\t%gms\n", e.Direction, orDash(e.Source), e.Service, e.Route,
						e.RPS, e.Success*100, e.P50MS, e.P99MS)
				}
				_ = tw.Flush()
				if once {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(2 * time.Second):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&window, "window", time.Minute, "the period each row covers")
	cmd.Flags().BoolVar(&once, "once", false, "print the table once and exit")
	c.flags(cmd)
	return cmd
}

func newExplainCommand() *cobra.Command {
	var c adminClient
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain REQUEST-ID",
		Short: "What happened to one request at every proxy it crossed: routes, policies, attempts, endpoints, reason codes, timings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var recs []record.Record
			if err := c.getJSON(cmd.Context(), "/v1/explain/"+url.PathEscape(args[0]), &recs); err != nil {
				return err
			}
			if asJSON {
				b, _ := json.MarshalIndent(recs, "", "  ")
				fmt.Println(string(b))
				return nil
			}
			fmt.Printf("request %s: %d hops\n\n", args[0], len(recs))
			t0 := recs[0].Time
			for i, r := range recs {
				fmt.Printf("%d. +%s %s %s (%s)\n", i+1, r.Time.Sub(t0).Round(10*time.Microsecond), r.Role, r.Proxy, r.Direction)
				fmt.Printf("   %s %s%s from %s\n", r.Method, r.Host, r.Path, orDash(r.Source))
				fmt.Printf("   listener %s, route %s → service %s, endpoint %s\n", r.Listener, orDash(r.Route), orDash(r.Service), orDash(r.Endpoint))
				if r.Consumer != "" || r.EdgeRoute != "" {
					fmt.Printf("   consumer %s (plan %s) via edge route %s\n", orDash(r.Consumer), orDash(r.Plan), orDash(r.EdgeRoute))
				}
				if r.Authz != "" {
					fmt.Printf("   authorization: rule %q decided\n", r.Authz)
				}
				fmt.Printf("   → %d", r.Status)
				if r.Reason != "" {
					fmt.Printf(" reason %s", r.Reason)
				}
				fmt.Printf(", %d attempt(s), %s total, %s upstream\n", r.Attempts, r.Duration.Round(10*time.Microsecond), r.Upstream.Round(10*time.Microsecond))
				if r.Error != "" {
					fmt.Printf("   error: %s\n", r.Error)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the records as JSON")
	c.flags(cmd)
	return cmd
}

func newImpactCommand() *cobra.Command {
	var c adminClient
	var service string
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "impact --service SERVICE [--since 10m]",
		Short: "Which consumers and edge routes the failures of an internal service hit, with counts and error rates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Service   string                `json:"service"`
				Since     string                `json:"since"`
				Consumers []telemetry.ImpactRow `json:"consumers"`
			}
			q := url.Values{"service": {service}, "since": {since.String()}}
			if err := c.getJSON(cmd.Context(), "/v1/impact?"+q.Encode(), &out); err != nil {
				return err
			}
			fmt.Printf("calls to %s over the last %s, by the consumer and edge route they were made for:\n\n", out.Service, out.Since)
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONSUMER\tEDGE ROUTE\tREQUESTS\tFAILURES\tERROR RATE")
			for _, r := range out.Consumers {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f%%\n", orDash(r.Consumer), orDash(r.EdgeRoute), r.Requests, r.Failures, r.ErrorRate*100)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the internal service (config name). Required")
	cmd.Flags().DurationVar(&since, "since", 10*time.Minute, "how far back (at most 30m)")
	_ = cmd.MarkFlagRequired("service")
	c.flags(cmd)
	return cmd
}
