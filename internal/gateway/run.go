package gateway

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ShutdownTimeout bounds the graceful shutdown on SIGINT or SIGTERM.
const ShutdownTimeout = 30 * time.Second

// reloadDebounce coalesces the bursts of events an editor's save produces.
const reloadDebounce = 100 * time.Millisecond

// WatchAndServe keeps gw running on the config file at path until ctx ends or SIGINT/SIGTERM
// arrives: it reloads on SIGHUP and whenever the file changes, then shuts down gracefully.
func WatchAndServe(ctx context.Context, gw *Gateway, path string, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	changes, stopWatch, err := watchFile(path, log)
	if err != nil {
		log.Warn("config file changes will not be noticed; SIGHUP and PUT /config still reload", "error", err)
	} else {
		defer stopWatch()
	}
	reload := func(why string) {
		log.Info("reloading config", "trigger", why, "file", path)
		_, _ = gw.LoadFileBy(why, path) // a refused config is logged and kept on the admin API
	}
	for {
		select {
		case <-ctx.Done():
			return shutdown(gw)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload("SIGHUP")
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			return shutdown(gw)
		case <-changes:
			reload("file change")
		}
	}
}

func shutdown(gw *Gateway) error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// watchFile reports changes to the file at path. It watches the directory so that editors that
// replace the file (write a temporary file, rename it over) are noticed too.
func watchFile(path string, log *slog.Logger) (<-chan struct{}, func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		_ = w.Close()
		return nil, nil, err
	}
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != abs || ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) == 0 {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(reloadDebounce)
				} else {
					timer.Reset(reloadDebounce)
				}
				fire = timer.C
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watcher error", "error", err)
			}
		}
	}()
	return out, func() { _ = w.Close(); <-done }, nil
}
