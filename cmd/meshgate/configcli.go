package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control"
)

// adminClient talks to the control plane's admin API.
type adminClient struct {
	server   string
	tokenEnv string
}

func (c *adminClient) flags(cmd *cobra.Command) {
	def := os.Getenv("MESHGATE_CONTROL_ADMIN")
	if def == "" {
		def = "http://127.0.0.1:15000"
	}
	cmd.Flags().StringVar(&c.server, "server", def, "control plane admin API (or $MESHGATE_CONTROL_ADMIN)")
	cmd.Flags().StringVar(&c.tokenEnv, "token-env", "MESHGATE_CONTROL_TOKEN", "environment variable holding the admin bearer token, if one is needed")
}

func (c *adminClient) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if tok := os.Getenv(c.tokenEnv); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if u, err := user.Current(); err == nil {
		req.Header.Set("X-Meshgate-Actor", u.Username)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("control plane at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		return resp, out, apiFailure(resp, out)
	}
	return resp, out, nil
}

// apiFailure prints an admin API error (every config error on its own line) and returns exit 1.
func apiFailure(resp *http.Response, body []byte) error {
	var e struct {
		Reason string   `json:"reason"`
		Error  string   `json:"error"`
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return fmt.Errorf("control plane answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(os.Stderr, "error: %s (%s)\n", e.Error, e.Reason)
	for _, l := range e.Errors {
		fmt.Fprintln(os.Stderr, l)
	}
	return exitCode(1)
}

func (c *adminClient) getJSON(ctx context.Context, path string, out any) error {
	_, body, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

func (c *adminClient) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, body, err := c.do(ctx, http.MethodPost, path, b, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

func newApplyCommand() *cobra.Command {
	var c adminClient
	var file string
	var ifVersion int64
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Store FILE as the control plane's config (validated as `meshgate validate` does; every error with file:line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readConfigFile(file)
			if err != nil {
				return err
			}
			// Validate here first, so errors name the file as the user knows it.
			if _, err := config.LoadBytes(file, data); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return exitCode(1)
			}
			hdr := map[string]string{"Content-Type": "application/yaml", "X-Meshgate-Source": file}
			if ifVersion >= 0 {
				hdr["If-Match"] = strconv.FormatInt(ifVersion, 10)
			}
			_, body, err := c.do(cmd.Context(), http.MethodPut, "/v1/config", data, hdr)
			if err != nil {
				return err
			}
			var rev control.RevisionInfo
			if err := json.Unmarshal(body, &rev); err != nil {
				return err
			}
			fmt.Printf("applied %s as config version %d (sha256 %s)\n", file, rev.Version, short(rev.Digest))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "config file (YAML), or - for standard input")
	cmd.Flags().Int64Var(&ifVersion, "if-version", -1, "apply only if the current config version is this one")
	_ = cmd.MarkFlagRequired("file")
	c.flags(cmd)
	return cmd
}

func readConfigFile(file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, config.MaxFileBytes+1))
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, config.MaxFileBytes+1))
}

func newGetCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "get [KIND [NAME]]",
		Short: "Print the control plane's current config, or the objects of one kind, or one object (YAML)",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/config"
			for _, a := range args {
				path += "/" + a
			}
			resp, body, err := c.do(cmd.Context(), http.MethodGet, path, nil, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "# config version %s\n", resp.Header.Get("X-Meshgate-Config-Version"))
			_, err = os.Stdout.Write(body)
			return err
		},
	}
	c.flags(cmd)
	return cmd
}

func newDeleteCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "Remove one object (listener, route, service, authenticator, consumer, plan) from the control plane's config",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, body, err := c.do(cmd.Context(), http.MethodDelete, "/v1/config/"+args[0]+"/"+args[1], nil, nil)
			if err != nil {
				return err
			}
			var rev control.RevisionInfo
			if err := json.Unmarshal(body, &rev); err != nil {
				return err
			}
			fmt.Printf("deleted %s %s: config version %d\n", args[0], args[1], rev.Version)
			return nil
		},
	}
	c.flags(cmd)
	return cmd
}

func newHistoryCommand() *cobra.Command {
	var c adminClient
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the control plane's config revisions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var revs []control.RevisionInfo
			if err := c.getJSON(cmd.Context(), "/v1/history?limit="+strconv.Itoa(limit), &revs); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tTIME\tACTOR\tCHANGE\tSOURCE\tSHA256")
			for _, r := range revs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Version, r.Time.Local().Format(time.DateTime), r.Actor, r.Comment, r.Source, short(r.Digest))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many revisions")
	c.flags(cmd)
	return cmd
}

func newRollbackCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "rollback VERSION",
		Short: "Store an earlier config revision again as the newest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := strconv.ParseUint(args[0], 10, 64); err != nil {
				return errors.New("VERSION must be a revision number (see meshgate history)")
			}
			var rev control.RevisionInfo
			if err := c.postJSON(cmd.Context(), "/v1/rollback/"+args[0], struct{}{}, &rev); err != nil {
				return err
			}
			fmt.Printf("rolled back to %s: config version %d\n", args[0], rev.Version)
			return nil
		},
	}
	c.flags(cmd)
	return cmd
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// printStatus writes the control plane's status as a person reads it.
func printStatus(w io.Writer, st *control.Status) {
	fmt.Fprintf(w, "replica %s (leader %s), trust domain %s\n", st.Replica, st.Leader, st.TrustDomain)
	fmt.Fprintf(w, "state version %d, config version %d, %d workloads\n", st.StateVersion, st.ConfigVersion, st.Workloads)
	if st.ConfigError != "" {
		fmt.Fprintf(w, "stored config not served: %s\n", st.ConfigError)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	for _, sh := range st.Services {
		fmt.Fprintf(w, "service %s: %d healthy, %d unhealthy, %d draining\n", sh.Service, sh.Healthy, sh.Unhealthy, sh.Draining)
	}
	fmt.Fprintf(w, "CA: %s\n\n", st.Rotation)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tROLE\tSERVICE\tSENT\tACKED\tSTATE")
	for _, p := range st.Proxies {
		state := "in sync"
		switch {
		case p.LastNACK != nil && p.LastNACK.Version == p.VersionSent:
			state = fmt.Sprintf("NACK %s: %s", p.LastNACK.Version, p.LastNACK.Error)
		case p.Stale:
			state = "no ACK (stale)"
		case p.VersionSent != p.VersionAcked:
			state = "waiting for ACK"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", p.ID, p.Role, p.Namespace, p.Service, p.VersionSent, p.VersionAcked, state)
	}
	_ = tw.Flush()
	if len(st.XDS) > 0 {
		fmt.Fprintf(w, "\n%d xDS streams\n", len(st.XDS))
	}
}
