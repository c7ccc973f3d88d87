package credential

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgate/meshgate/internal/config"
)

func basicDirectory(t testing.TB) *Directory {
	t.Helper()
	return mustDirectory(t, []config.Consumer{
		{Name: "a", Basic: &config.BasicCredential{Username: "alice", BcryptHash: hashOf(t, "s3cret")}},
		{Name: "b", Basic: &config.BasicCredential{Username: "bob", BcryptHash: hashOf(t, "")}},
	})
}

func TestByBasic(t *testing.T) {
	d := basicDirectory(t)
	for _, tc := range []struct {
		user, pass, want string
	}{
		{"alice", "s3cret", "a"},
		{"alice", "s3cret", "a"}, // from the cache
		{"alice", "S3cret", ""},
		{"alice", "", ""},
		{"Alice", "s3cret", ""},
		{"bob", "", "b"},
		{"bob", "s3cret", ""},
		{"carol", "s3cret", ""},
		{"", "", ""},
		{"alice", strings.Repeat("x", 100), ""},
	} {
		c, ok := d.ByBasic(tc.user, tc.pass)
		if (tc.want == "") == ok || (ok && c.Name != tc.want) {
			t.Errorf("ByBasic(%q, %q) = %+v, %v; want %q", tc.user, tc.pass, c, ok, tc.want)
		}
	}
}

// TestByBasicUnknownUserCostsBcrypt: a user name no consumer has is still checked against a
// bcrypt hash of the cost the configured hashes have.
func TestByBasicUnknownUserCostsBcrypt(t *testing.T) {
	d := basicDirectory(t)
	if d.dummy.hash != nil {
		t.Fatal("dummy hash made before it was needed")
	}
	if _, ok := d.ByBasic("mallory", "guess"); ok {
		t.Fatal("unknown user authenticated")
	}
	cost, err := bcrypt.Cost(d.dummy.hash)
	if err != nil || cost != bcrypt.MinCost {
		t.Fatalf("dummy hash cost %d (%v), want %d like the configured hashes", cost, err, bcrypt.MinCost)
	}
	if _, ok := d.ByBasic("mallory", "meshgate dummy password"); ok {
		t.Fatal("the dummy hash's own password authenticated")
	}
	if n := len(d.cache.entries); n != 0 {
		t.Errorf("%d failed checks cached", n)
	}
}

func TestTypicalCost(t *testing.T) {
	for _, tc := range []struct {
		costs []int
		want  int
	}{
		{nil, bcrypt.DefaultCost},
		{[]int{12}, 12},
		{[]int{10, 12, 12}, 12},
		{[]int{12, 10, 10}, 10},
		{[]int{11, 5}, 11},
	} {
		if got := typicalCost(tc.costs); got != tc.want {
			t.Errorf("typicalCost(%v) = %d, want %d", tc.costs, got, tc.want)
		}
	}
}

// TestBasicCache: a success is remembered for the TTL, a failure never is, and the cache stays
// within its size.
func TestBasicCache(t *testing.T) {
	d := basicDirectory(t)
	now := time.Unix(1_000_000, 0)
	d.cache.now = func() time.Time { return now }

	if _, ok := d.ByBasic("alice", "wrong"); ok {
		t.Fatal("wrong password authenticated")
	}
	if n := len(d.cache.entries); n != 0 {
		t.Fatalf("%d entries after a failure, want 0", n)
	}
	if _, ok := d.ByBasic("alice", "s3cret"); !ok {
		t.Fatal("right password refused")
	}
	// Replace alice's hash: while the success is remembered, bcrypt is not consulted.
	u := d.basic["alice"]
	u.hash = []byte(hashOf(t, "other"))
	d.basic["alice"] = u
	if c, ok := d.ByBasic("alice", "s3cret"); !ok || c.Name != "a" {
		t.Fatal("remembered success not used")
	}
	if _, ok := d.ByBasic("alice", "s3cret2"); ok {
		t.Fatal("a different password matched the remembered one")
	}
	now = now.Add(basicCacheTTL)
	if _, ok := d.ByBasic("alice", "s3cret"); ok {
		t.Fatal("success remembered past the TTL")
	}
	if n := len(d.cache.entries); n != 0 {
		t.Fatalf("%d entries after expiry, want 0", n)
	}

	c := newBasicCache(3, time.Minute)
	c.now = func() time.Time { return now }
	who := &Consumer{Name: "x"}
	for i := range 10 {
		c.put(d.cacheKey("u"+string(rune('a'+i)), "p"), who)
		if len(c.entries) > 3 {
			t.Fatalf("%d entries, want at most 3", len(c.entries))
		}
	}
	if _, ok := c.get(d.cacheKey("uj", "p")); !ok {
		t.Error("the latest entry was evicted")
	}
}

// TestCacheKeySeparatesFields: moving bytes between the user name and the password changes the key.
func TestCacheKeySeparatesFields(t *testing.T) {
	d := basicDirectory(t)
	if d.cacheKey("ab", "c") == d.cacheKey("a", "bc") {
		t.Fatal("cache keys collide")
	}
	if d2 := basicDirectory(t); d2.cacheKey("a", "b") == d.cacheKey("a", "b") {
		t.Fatal("two directories share a cache salt")
	}
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header, user, pass string
		ok                       bool
	}{
		{"plain", "Basic " + enc("alice:s3cret"), "alice", "s3cret", true},
		{"lowercase scheme", "basic " + enc("alice:s3cret"), "alice", "s3cret", true},
		{"uppercase scheme", "BASIC " + enc("alice:s3cret"), "alice", "s3cret", true},
		{"several spaces", "Basic   " + enc("alice:pw"), "alice", "pw", true},
		{"colon in password", "Basic " + enc("alice:a:b"), "alice", "a:b", true},
		{"empty password", "Basic " + enc("alice:"), "alice", "", true},
		{"utf-8", "Basic " + enc("jörg:pässword"), "jörg", "pässword", true},
		{"missing colon", "Basic " + enc("alice"), "", "", false},
		{"empty user", "Basic " + enc(":pw"), "", "", false},
		{"empty credentials", "Basic " + enc(""), "", "", false},
		{"no token", "Basic ", "", "", false},
		{"scheme only", "Basic", "", "", false},
		{"no space", "Basic" + enc("alice:pw"), "", "", false},
		{"tab", "Basic\t" + enc("alice:pw"), "", "", false},
		{"other scheme", "Bearer " + enc("alice:pw"), "", "", false},
		{"scheme prefix", "Basicx " + enc("alice:pw"), "", "", false},
		{"bad base64", "Basic !!!!", "", "", false},
		{"unpadded", "Basic " + strings.TrimRight(enc("alice:pw"), "="), "", "", false},
		{"url alphabet", "Basic " + base64.URLEncoding.EncodeToString([]byte("a?>:~~~")), "", "", false},
		{"stray bits", "Basic YR==", "", "", false},
		{"newline inside", "Basic " + enc("alice:pw")[:4] + "\n" + enc("alice:pw")[4:], "", "", false},
		{"trailing space", "Basic " + enc("alice:pw") + " ", "", "", false},
		{"control in user", "Basic " + enc("al\x00ice:pw"), "", "", false},
		{"control in password", "Basic " + enc("alice:p\nw"), "", "", false},
		{"empty", "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, pass, ok := ParseBasic(tc.header)
			if user != tc.user || pass != tc.pass || ok != tc.ok {
				t.Errorf("ParseBasic(%q) = %q, %q, %v; want %q, %q, %v", tc.header, user, pass, ok, tc.user, tc.pass, tc.ok)
			}
		})
	}
}

// FuzzParseBasic: ParseBasic never panics, what it accepts satisfies its contract, and
// credentials it accepts encode back to a header it parses the same way.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{
		"Basic YWxpY2U6czNjcmV0", "basic YWxpY2U6", "Basic", "Basic ", "Basic YR==", "Basic !!!!",
		"BASIC   OnB3", "Bearer x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		user, pass, ok := ParseBasic(header)
		if !ok {
			if user != "" || pass != "" {
				t.Fatalf("refused %q but returned %q, %q", header, user, pass)
			}
			return
		}
		if user == "" || strings.Contains(user, ":") || hasControl(user) || hasControl(pass) {
			t.Fatalf("accepted %q as user %q password %q", header, user, pass)
		}
		again := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		if u2, p2, ok2 := ParseBasic(again); !ok2 || u2 != user || p2 != pass {
			t.Fatalf("round trip of %q, %q gave %q, %q, %v", user, pass, u2, p2, ok2)
		}
	})
}

// TestByBasicConcurrent: checks from many goroutines share the cache and the dummy hash safely.
func TestByBasicConcurrent(t *testing.T) {
	d := basicDirectory(t)
	done := make(chan bool)
	for i := range 8 {
		go func() {
			ok := true
			for j := range 5 {
				_, good := d.ByBasic("alice", "s3cret")
				_, bad := d.ByBasic("nobody"+string(rune('a'+i)), string(rune('a'+j)))
				ok = ok && good && !bad
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("a concurrent check gave the wrong answer")
		}
	}
}
