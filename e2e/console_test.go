package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// browser starts Debian's chromium (headless, its own profile, so its own cookies) at a window
// width, and returns a tab.
func browser(t *testing.T, ctx context.Context, width int) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: apt-get install -y chromium (.ci/run does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(width, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// shots is where screenshots go: $SCREENSHOT_DIR, or a temporary folder named in the log.
func shots(t *testing.T) string {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shot writes a full-page screenshot of the tab.
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(shots(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// value runs an action that reads something, failing the test on error.
func value[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func run(t *testing.T, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, actions...); err != nil {
		loc, _ := chromedp.Run(tab, chromedp.Location())
		shot(t, tab, "failed-"+strings.ReplaceAll(t.Name(), "/", "-"))
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// TestConsole drives the web console in a real browser against the real platform: an admin
// signs in by link, adds a webhook with bearer auth and tests it, sees a real delivery in the log
// and redelivers it, and disables the webhook; a manager is shown the no-access page; forged and
// reused links and an invalid URL are refused with a clear page or field error.
func TestConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{})
	rcv, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	rcv.SetStatus(200)
	p := stack.Ports()
	svc, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	acct, err := webhooksv1.NewAccountServiceClient(svc).CreateAccount(ctx, &webhooksv1.CreateAccountRequest{Name: "Acme Dental"})
	if err != nil {
		t.Fatal(err)
	}
	accountID := acct.GetAccountId()
	link := func(email, role string) string {
		l, err := stack.LoginLink(accountID, email, role, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("admin", func(t *testing.T) {
		tab := browser(t, ctx, 1280)
		run(t, tab, "sign in", chromedp.Navigate(link("admin@acme.test", "admin")),
			chromedp.WaitVisible(`//h1[contains(., "Webhook integrations")]`))
		shot(t, tab, "01-empty-list")

		before, err := stack.MinIndexed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const token = "zap-bearer-token-0123456789"
		run(t, tab, "add a webhook with bearer auth and Save & Test",
			chromedp.Click(chromedp.CSS(`a[href="/webhooks/new"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#url`)),
			chromedp.SendKeys(chromedp.CSS(`#url`), rcv.URL),
			chromedp.Click(chromedp.CSS(`input[name=event_types][value="`+event.NewContact+`"]`)),
			chromedp.Click(chromedp.CSS(`input[name=auth][value=bearer]`)),
			chromedp.SendKeys(chromedp.CSS(`#bearer_token`), token),
			chromedp.Click(chromedp.CSS(`button[value=save_test]`)),
			chromedp.WaitVisible(chromedp.CSS(`#test-result`)))
		if got := text(t, tab, `#test-result .status-code`); got != "200" {
			t.Errorf("test result status code: got %q, want 200", got)
		}
		if got := text(t, tab, `#test-title`); !strings.Contains(got, "accepted") {
			t.Errorf("test result title: got %q, want it to say the endpoint accepted it", got)
		}
		secret := value(t, tab, "read the one-time secret", chromedp.Value(chromedp.CSS(`#signing-secret`)))
		if !strings.HasPrefix(secret, "whsec_") {
			t.Errorf("signing secret shown: got %q, want whsec_…", secret)
		}
		shot(t, tab, "02-save-and-test")
		testReq, err := rcv.WaitFor(ctx, func(devstack.Request) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if got := testReq.Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("test event Authorization: got %q, want the bearer token", got)
		}
		// The create answer is rendered on POST /webhooks; its form posts to /webhooks/{id}.
		action := value(t, tab, "form action", chromedp.AttributeValue(chromedp.CSS(`form.form`), "action"))
		webhookID := strings.TrimPrefix(action.Value, "/webhooks/")
		if webhookID == "" || strings.Contains(webhookID, "/") {
			t.Fatalf("form action after create: got %q, want /webhooks/{id}", action.Value)
		}

		// A real event: a contact created through the contacts API.
		if err := stack.WaitIndexed(ctx, before+1); err != nil {
			t.Fatal(err)
		}
		cc, err := devstack.Dial(devstack.Addr(p.ContactsGRPC), stack.ServiceToken)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		c, err := contactsv1.NewContactServiceClient(cc).CreateContact(ctx, &contactsv1.CreateContactRequest{AccountId: accountID,
			Contact: &contactsv1.Contact{FirstName: "Jane", LastName: "Smith", Phone: "(555) 123-4567", Email: "jane@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		isContact := func(r devstack.Request) bool {
			var env event.Envelope
			if json.Unmarshal(r.Body, &env) != nil {
				return false
			}
			return strings.Contains(string(env.Data), c.GetContact().GetId())
		}
		if _, err := rcv.WaitFor(ctx, isContact); err != nil {
			t.Fatal(err)
		}

		// The delivery log shows it once the attempt record is written: reload until it does.
		logURL := stack.ConsoleURL() + "/webhooks/" + webhookID + "/deliveries?event_type=" + event.NewContact
		for {
			run(t, tab, "open the delivery log", chromedp.Navigate(logURL), chromedp.WaitVisible(chromedp.CSS(`h1`)))
			n := value(t, tab, "count redeliver buttons",
				chromedp.Evaluate[int](`document.querySelectorAll("form[action$='/redeliver']").length`))
			if n > 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal("the contact's delivery never appeared in the delivery log")
			case <-time.After(300 * time.Millisecond):
			}
		}
		if got := text(t, tab, `table.attempts tbody tr .badge`); got != "Delivered" {
			t.Errorf("delivery outcome: got %q, want Delivered", got)
		}
		shot(t, tab, "03-delivery-log")
		run(t, tab, "redeliver", chromedp.Click(chromedp.CSS(`form[action$='/redeliver'] button`)),
			chromedp.WaitVisible(chromedp.CSS(`.notice.ok`)))
		if got := text(t, tab, `.notice.ok`); !strings.Contains(got, "Redelivery queued") {
			t.Errorf("after redeliver: got notice %q", got)
		}
		if _, err := rcv.WaitFor(ctx, func(devstack.Request) bool {
			n := 0
			for _, r := range rcv.Requests() {
				if isContact(r) {
					n++
				}
			}
			return n >= 2
		}); err != nil {
			t.Fatalf("the redelivery never arrived: %v", err)
		}
		shot(t, tab, "04-redelivered")

		run(t, tab, "the account-wide log, last hour", chromedp.Navigate(stack.ConsoleURL()+"/deliveries?window=1h"),
			chromedp.WaitVisible(chromedp.CSS(`table.attempts`)))
		if n := value(t, tab, "count rows", chromedp.Evaluate[int](`document.querySelectorAll("table.attempts a[href='/webhooks/`+webhookID+`/deliveries']").length`)); n < 2 {
			t.Errorf("account-wide log: %d attempts of the webhook, want at least the test and the delivery", n)
		}
		shot(t, tab, "04-account-log")
		run(t, tab, "recover the last hour's events", chromedp.Navigate(logURL+"&window=1h"),
			chromedp.Click(chromedp.CSS(`form[action$='/recover'] button`)),
			chromedp.WaitVisible(chromedp.CSS(`.notice.ok`)))
		// The API's counts, in words; what recovery delivers is the subscription service's
		// business (e2e/resthooks_test.go).
		if got := text(t, tab, `.notice.ok`); got != "Recovery queued 1 deliveries from 1 events." {
			t.Errorf("after recover: got notice %q, want the one contact event queued", got)
		}

		run(t, tab, "disable", chromedp.Navigate(stack.ConsoleURL()+"/webhooks"),
			chromedp.Click(chromedp.CSS(`form[action$='/disable'] button`)),
			chromedp.WaitVisible(chromedp.CSS(`.badge.off`)))
		if got := text(t, tab, `.badge.off`); got != "Disabled" {
			t.Errorf("status after disable: got %q, want Disabled", got)
		}
		shot(t, tab, "05-list-disabled")
		key, err := webhooksv1.NewAccountServiceClient(svc).CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
			AccountId: accountID, UserEmail: "check@acme.test", Role: webhooksv1.Role_ROLE_ADMIN})
		if err != nil {
			t.Fatal(err)
		}
		ac, err := devstack.Dial(devstack.Addr(p.SubscriptionsGRPC), key.GetApiKey())
		if err != nil {
			t.Fatal(err)
		}
		defer ac.Close()
		wh, err := webhooksv1.NewWebhookServiceClient(ac).GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: webhookID})
		if err != nil {
			t.Fatal(err)
		}
		if wh.GetWebhook().GetEnabled() {
			t.Error("the API still reports the webhook enabled after Disable in the console")
		}

		// Auth never follows a URL to another origin: the edit form must name the token again.
		run(t, tab, "move the webhook to a closed port without re-entering the token",
			chromedp.Navigate(stack.ConsoleURL()+"/webhooks/"+webhookID), chromedp.WaitVisible(chromedp.CSS(`#url`)),
			chromedp.Clear(chromedp.CSS(`#url`)), chromedp.SendKeys(chromedp.CSS(`#url`), "http://127.0.0.1:1/hook"),
			chromedp.Click(chromedp.CSS(`button[value=save_test]`)),
			chromedp.WaitVisible(chromedp.CSS(`fieldset.invalid .field-error`)))
		if got := text(t, tab, `fieldset.invalid .field-error`); !strings.Contains(got, "Enter the token or header value again") {
			t.Errorf("auth field error after changing the origin without the token: got %q", got)
		}
		if got := value(t, tab, "token hint", chromedp.AttributeValue(chromedp.CSS(`#bearer_token`), "placeholder")); got.Value != "saved, ends in 6789" {
			t.Errorf("bearer token placeholder after the error: got %q, want the saved token's hint", got.Value)
		}
		shot(t, tab, "10-auth-field-error")
		run(t, tab, "give the token again and Save & Test against the closed port",
			chromedp.SendKeys(chromedp.CSS(`#bearer_token`), token),
			chromedp.Click(chromedp.CSS(`button[value=save_test]`)),
			chromedp.WaitVisible(chromedp.CSS(`#test-result .error-text`)))
		if got := text(t, tab, `#test-result .error-text`); !strings.Contains(got, "connection refused") {
			t.Errorf("test against a closed port: got %q, want the refused connection in words", got)
		}
		if got := text(t, tab, `#test-title`); !strings.Contains(got, "did not go through") {
			t.Errorf("test result title: got %q", got)
		}
		shot(t, tab, "11-test-failed")

		run(t, tab, "submit an invalid URL", chromedp.Navigate(stack.ConsoleURL()+"/webhooks/new"),
			chromedp.WaitVisible(chromedp.CSS(`#url`)),
			chromedp.SendKeys(chromedp.CSS(`#url`), "ftp://files.example.com/in"),
			chromedp.Click(chromedp.CSS(`input[name=event_types][value="`+event.NewContact+`"]`)),
			chromedp.Click(chromedp.CSS(`button[value=save]`)),
			chromedp.WaitVisible(chromedp.CSS(`#url-error`)))
		if got := text(t, tab, `#url-error`); !strings.Contains(strings.ToLower(got), "http") {
			t.Errorf("URL field error: got %q, want it to say the URL must be http(s)", got)
		}
		shot(t, tab, "06-field-error")

		run(t, tab, "rotate the signing secret", chromedp.Navigate(stack.ConsoleURL()+"/webhooks/"+webhookID),
			chromedp.Click(chromedp.CSS(`form[action$='/rotate'] button`)), chromedp.WaitVisible(chromedp.CSS(`#signing-secret`)))
		rotated := value(t, tab, "read the rotated secret", chromedp.Value(chromedp.CSS(`#signing-secret`)))
		if !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
			t.Errorf("rotated secret: got %q, want a new whsec_ secret", rotated)
		}
		shot(t, tab, "12-secret-rotated")
		run(t, tab, "reload: the secret is gone", chromedp.Navigate(stack.ConsoleURL()+"/webhooks/"+webhookID),
			chromedp.WaitVisible(chromedp.CSS(`#url`)))
		if n := value(t, tab, "count secret fields", chromedp.Evaluate[int](`document.querySelectorAll("#signing-secret").length`)); n != 0 {
			t.Error("the signing secret is shown again after a reload")
		}
		run(t, tab, "delete with confirmation", chromedp.Click(chromedp.CSS(`a[href$='/delete']`)),
			chromedp.WaitVisible(`//h1[contains(., "Delete this webhook?")]`))
		shot(t, tab, "13-delete-confirm")
		run(t, tab, "confirm", chromedp.Click(chromedp.CSS(`form[action$='/delete'] button`)),
			chromedp.WaitVisible(`//div[contains(@class, "notice")][contains(., "Webhook deleted.")]`))
		if n := value(t, tab, "count rows", chromedp.Evaluate[int](`document.querySelectorAll("a[href='/webhooks/`+webhookID+`']").length`)); n != 0 {
			t.Error("the deleted webhook is still listed")
		}
	})

	t.Run("narrow screen", func(t *testing.T) {
		tab := browser(t, ctx, 1280)
		// Headless windows are at least 500 px wide; a phone's viewport is emulated.
		run(t, tab, "sign in on a phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
			chromedp.Navigate(link("admin@acme.test", "admin")),
			chromedp.WaitVisible(`//h1[contains(., "Webhook integrations")]`))
		noSideScroll := func(page string) {
			t.Helper()
			scrollW := value(t, tab, "measure", chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			clientW := value(t, tab, "measure", chromedp.Evaluate[int](`document.documentElement.clientWidth`))
			if clientW != 375 || scrollW > clientW {
				t.Errorf("%s at 375 px: scrollWidth %d, clientWidth %d; want no sideways scrolling", page, scrollW, clientW)
			}
		}
		noSideScroll("webhook list")
		shot(t, tab, "07-list-375px")
		run(t, tab, "open the add form", chromedp.Navigate(stack.ConsoleURL()+"/webhooks/new"), chromedp.WaitVisible(chromedp.CSS(`#url`)))
		noSideScroll("add form")
		shot(t, tab, "07-form-375px")
	})

	t.Run("manager", func(t *testing.T) {
		tab := browser(t, ctx, 1280)
		run(t, tab, "sign in as manager", chromedp.Navigate(link("manager@acme.test", "manager")),
			chromedp.WaitVisible(chromedp.CSS(`#no-access`)))
		if got := text(t, tab, `#no-access h1`); got != "Only account admins can manage webhook integrations" {
			t.Errorf("manager page: got %q", got)
		}
		shot(t, tab, "08-manager-no-access")
		run(t, tab, "manager opens the add form directly", chromedp.Navigate(stack.ConsoleURL()+"/webhooks/new"),
			chromedp.WaitVisible(chromedp.CSS(`#no-access`)))
	})

	t.Run("cookie, headers and CSRF", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		get := func(u string) (*http.Response, string) {
			t.Helper()
			resp, err := client.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, string(b)
		}
		resp, _ := get(link("admin@acme.test", "admin"))
		var sc *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "console_session" {
				sc = c
			}
		}
		if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure {
			t.Fatalf("session cookie: got %+v, want HttpOnly, SameSite=Strict, not Secure in development", sc)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy allows inline: %q", csp)
		}
		resp, page := get(stack.ConsoleURL() + "/webhooks")
		if resp.StatusCode != http.StatusOK || strings.Contains(page, "ctk_") {
			t.Fatalf("GET /webhooks: status %d; the page must never carry the session's API key", resp.StatusCode)
		}
		_, form := get(stack.ConsoleURL() + "/webhooks/new")
		i := strings.Index(form, `name="csrf" value="`)
		if i < 0 {
			t.Fatal("the add form has no CSRF field")
		}
		csrf := form[i+len(`name="csrf" value="`):]
		csrf = csrf[:strings.IndexByte(csrf, '"')]
		post := func(token string) int {
			t.Helper()
			v := url.Values{"url": {rcv.URL}, "event_types": {event.NewContact}, "auth": {"none"}, "action": {"save"}}
			if token != "" {
				v.Set("csrf", token)
			}
			resp, err := client.PostForm(stack.ConsoleURL()+"/webhooks", v)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		before := countWebhooks(t, ctx, stack, accountID)
		if got := post(""); got != http.StatusForbidden {
			t.Errorf("POST without CSRF token: got %d, want 403", got)
		}
		if got := post(csrf + "x"); got != http.StatusForbidden {
			t.Errorf("POST with a wrong CSRF token: got %d, want 403", got)
		}
		if got := countWebhooks(t, ctx, stack, accountID); got != before {
			t.Errorf("refused POSTs changed the webhooks: %d before, %d after", before, got)
		}
		if got := post(csrf); got != http.StatusOK {
			t.Errorf("POST with the CSRF token: got %d, want 200 after the redirect", got)
		}
		if got := countWebhooks(t, ctx, stack, accountID); got != before+1 {
			t.Errorf("POST with the CSRF token: %d webhooks, want %d", got, before+1)
		}
	})

	t.Run("forged and reused links", func(t *testing.T) {
		tab := browser(t, ctx, 1280)
		good := link("admin@acme.test", "admin")
		u, _ := url.Parse(good)
		tok := u.Query().Get("token")
		body, _, _ := strings.Cut(tok, ".")
		forged := stack.ConsoleURL() + "/login?token=" + url.QueryEscape(body+".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		run(t, tab, "open a forged link", chromedp.Navigate(forged), chromedp.WaitVisible(chromedp.CSS(`#refused`)))
		if got := text(t, tab, `#refused p`); !strings.Contains(got, "not valid") {
			t.Errorf("forged link: got %q", got)
		}
		shot(t, tab, "09-forged-link")
		run(t, tab, "no session after a forged link", chromedp.Navigate(stack.ConsoleURL()+"/webhooks"),
			chromedp.WaitVisible(chromedp.CSS(`#signed-out`)))
		run(t, tab, "use a link", chromedp.Navigate(good), chromedp.WaitVisible(`//h1[contains(., "Webhook integrations")]`))
		run(t, tab, "use it again", chromedp.Navigate(good), chromedp.WaitVisible(chromedp.CSS(`#refused`)))
		if got := text(t, tab, `#refused p`); !strings.Contains(got, "already used") {
			t.Errorf("reused link: got %q", got)
		}
	})
}

// countWebhooks counts an account's webhooks through the API, with a key of its own.
func countWebhooks(t *testing.T, ctx context.Context, stack *devstack.Stack, accountID string) int {
	t.Helper()
	svc, err := devstack.Dial(devstack.Addr(stack.Ports().SubscriptionsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	key, err := webhooksv1.NewAccountServiceClient(svc).CreateApiKey(ctx, &webhooksv1.CreateApiKeyRequest{
		AccountId: accountID, UserEmail: "count@acme.test", Role: webhooksv1.Role_ROLE_ADMIN})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := devstack.Dial(devstack.Addr(stack.Ports().SubscriptionsGRPC), key.GetApiKey())
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	resp, err := webhooksv1.NewWebhookServiceClient(ac).ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetWebhooks())
}
