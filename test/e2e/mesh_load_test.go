package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// loadMaxInFlight bounds the requests a load has outstanding at once.
const loadMaxInFlight = 128

// loadError is one failed request of a load: when it was sent and what went wrong.
type loadError struct {
	// At is when the request was sent, from the start of the load.
	At time.Duration
	// What is the status and reason code, or the client's error.
	What string
}

// loadResult is what a bounded load observed.
type loadResult struct {
	// Sent and OK count the requests sent and those answered 2xx with a whole body.
	Sent, OK int
	// Errors are the other requests, in the order they completed.
	Errors []loadError
	// ByBody counts the 2xx answers by their (trimmed) body: which replica answered.
	ByBody map[string]int
	// Took is how long the load ran, from the first request to the last answer.
	Took time.Duration
}

// String summarises the result for logs.
func (r loadResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d sent, %d ok, %d errors in %v; answered by %v", r.Sent, r.OK, len(r.Errors), r.Took.Round(time.Millisecond), r.ByBody)
	for i, e := range r.Errors {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... %d more", len(r.Errors)-i)
			break
		}
		fmt.Fprintf(&b, "\n  at %v: %s", e.At.Round(time.Millisecond), e.What)
	}
	return b.String()
}

// meshLoad is a fixed-rate load running in the background.
type meshLoad struct {
	start time.Time
	done  chan struct{}
	mu    sync.Mutex
	res   loadResult
}

// startLoad sends GET url with c at rate requests per second for d (rate×d requests in all,
// at most loadMaxInFlight outstanding; each bounded by c's timeout).
func startLoad(c *http.Client, url string, rate int, d time.Duration) *meshLoad {
	l := &meshLoad{start: time.Now(), done: make(chan struct{}), res: loadResult{ByBody: map[string]int{}}}
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	go func() {
		defer close(l.done)
		sem := make(chan struct{}, loadMaxInFlight)
		var wg sync.WaitGroup
		for i := range total {
			if wait := time.Until(l.start.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				l.one(c, url)
			}()
		}
		wg.Wait()
		l.mu.Lock()
		l.res.Sent, l.res.Took = total, time.Since(l.start)
		l.mu.Unlock()
	}()
	return l
}

// one sends one request and records its outcome.
func (l *meshLoad) one(c *http.Client, url string) {
	at := time.Since(l.start)
	what, body := "", ""
	resp, err := c.Get(url)
	if err != nil {
		what = err.Error()
	} else {
		b, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = strings.TrimSpace(string(b))
		switch {
		case rerr != nil:
			what = fmt.Sprintf("%d, reading the body: %v", resp.StatusCode, rerr)
		case resp.StatusCode/100 != 2:
			what = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if what != "" {
		l.res.Errors = append(l.res.Errors, loadError{At: at, What: what})
		return
	}
	l.res.OK++
	l.res.ByBody[body]++
}

// since is the time elapsed from the load's start.
func (l *meshLoad) since() time.Duration { return time.Since(l.start) }

// wait waits for the load to finish and returns what it observed.
func (l *meshLoad) wait() loadResult {
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.res
	sort.SliceStable(r.Errors, func(i, j int) bool { return r.Errors[i].At < r.Errors[j].At })
	return r
}
