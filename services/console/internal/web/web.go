// Package web is the console's HTTP front end: server-rendered pages for "Settings → Webhook
// Integrations" that call the subscription service's WebhookService as the signed-in user.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/loginlink"
	"github.com/customertext/webhooks/services/console/internal/session"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the session cookie.
const CookieName = "console_session"

// contentSecurityPolicy allows only the console's own stylesheet and script: no inline script or
// style, no framing, forms post only back to the console.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Config is what the front end needs.
type Config struct {
	Logger *slog.Logger
	// Webhooks is called with the session's API key on every request.
	Webhooks webhooksv1.WebhookServiceClient
	// Accounts mints the per-session API key with the service credential.
	Accounts webhooksv1.AccountServiceClient
	Redeemer *loginlink.Redeemer
	Sessions *session.Store
	// SecureCookies sets the Secure attribute (everywhere but local development over http).
	SecureCookies bool
	Now           func() time.Time
}

// Server serves the console.
type Server struct {
	cfg   Config
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"join": strings.Join,
	"outcome": func(o webhooksv1.Outcome) string {
		switch o {
		case webhooksv1.Outcome_OUTCOME_SUCCEEDED:
			return "Delivered"
		case webhooksv1.Outcome_OUTCOME_RETRYING:
			return "Failed, retrying"
		case webhooksv1.Outcome_OUTCOME_DEAD_LETTERED:
			return "Failed"
		}
		return "Unknown"
	},
	"outcomeClass": func(o webhooksv1.Outcome) string {
		switch o {
		case webhooksv1.Outcome_OUTCOME_SUCCEEDED:
			return "ok"
		case webhooksv1.Outcome_OUTCOME_RETRYING:
			return "warn"
		}
		return "bad"
	},
	"when": func(t interface{ AsTime() time.Time }) string {
		return t.AsTime().UTC().Format("2006-01-02 15:04:05 UTC")
	},
}

// New parses the templates and returns the server.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return s, nil
}

// Handler returns the console's routes behind its security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
	})
	mux.Handle("POST /logout", s.authed(s.logout))
	mux.Handle("GET /webhooks", s.authed(s.list))
	mux.Handle("GET /webhooks/new", s.authed(s.newForm))
	mux.Handle("POST /webhooks", s.authed(s.create))
	mux.Handle("GET /webhooks/{id}", s.authed(s.editForm))
	mux.Handle("POST /webhooks/{id}", s.authed(s.update))
	mux.Handle("POST /webhooks/{id}/enable", s.authed(s.setEnabled(true)))
	mux.Handle("POST /webhooks/{id}/disable", s.authed(s.setEnabled(false)))
	mux.Handle("POST /webhooks/{id}/test", s.authed(s.test))
	mux.Handle("GET /webhooks/{id}/delete", s.authed(s.confirmDelete))
	mux.Handle("POST /webhooks/{id}/delete", s.authed(s.delete))
	mux.Handle("POST /webhooks/{id}/rotate", s.authed(s.rotate))
	mux.Handle("GET /webhooks/{id}/deliveries", s.authed(s.deliveries))
	mux.Handle("POST /webhooks/{id}/deliveries/{delivery}/redeliver", s.authed(s.redeliver))
	mux.Handle("POST /webhooks/{id}/redeliver-failed", s.authed(s.redeliverFailed))
	mux.Handle("POST /webhooks/{id}/recover", s.authed(s.recoverEvents))
	mux.Handle("GET /deliveries", s.authed(s.deliveries))
	mux.Handle("GET /help", s.authed(s.help))
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// Login links carry their token in the URL: never send it on as a referrer.
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// request is one authenticated request.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sid  string
	sess session.Session
	// ctx carries the session's API key to WebhookService.
	ctx context.Context
}

type handlerFunc func(*request)

// authed loads the session, refuses requests without one, checks the CSRF token of every
// state-changing request, and attaches the user's API credential to outgoing calls.
func (s *Server) authed(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		var sess session.Session
		ok := false
		if err == nil {
			sess, ok = s.cfg.Sessions.Get(c.Value, s.cfg.Now())
		}
		if !ok {
			s.render(w, http.StatusUnauthorized, "signedout", nil, pageData{Title: "Signed out"})
			return
		}
		if r.Method == http.MethodPost {
			if !sess.CheckCSRF(r.PostFormValue("csrf")) {
				s.cfg.Logger.Warn("csrf token mismatch", "path", r.URL.Path, "account_id", sess.AccountID)
				http.Error(w, "This form has expired. Go back, reload the page and try again.", http.StatusForbidden)
				return
			}
		}
		ctx := metadata.AppendToOutgoingContext(r.Context(), "authorization", "Bearer "+sess.APIKey)
		h(&request{w: w, r: r, sid: c.Value, sess: sess, ctx: ctx})
	})
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Session *session.Session
	Flash   string
	Nav     string
	Data    any
}

func (s *Server) render(w http.ResponseWriter, code int, page string, sess *session.Session, d pageData) {
	t, ok := s.pages[page]
	if !ok {
		http.Error(w, "page not found", http.StatusInternalServerError)
		return
	}
	d.Session = sess
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		s.cfg.Logger.Error("render page", "page", page, "error", err)
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (q *request) page(s *Server, code int, page, title string, data any) {
	s.render(q.w, code, page, &q.sess, pageData{Title: title, Flash: s.cfg.Sessions.TakeFlash(q.sid), Nav: page, Data: data})
}

func (q *request) redirect(s *Server, to, flash string) {
	if flash != "" {
		s.cfg.Sessions.SetFlash(q.sid, flash)
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
}

// login redeems a login link, mints the session's API credential and sets the session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	claims, err := s.cfg.Redeemer.Redeem(r.URL.Query().Get("token"), s.cfg.Now())
	if err != nil {
		s.cfg.Logger.Warn("login link refused", "reason", err.Error())
		msg := "This sign-in link is not valid."
		switch {
		case errors.Is(err, loginlink.ErrExpired):
			msg = "This sign-in link has expired."
		case errors.Is(err, loginlink.ErrUsed):
			msg = "This sign-in link was already used. Each link signs you in once."
		}
		s.render(w, http.StatusForbidden, "refused", nil, pageData{Title: "Sign-in refused", Data: msg})
		return
	}
	role := map[string]webhooksv1.Role{"admin": webhooksv1.Role_ROLE_ADMIN, "manager": webhooksv1.Role_ROLE_MANAGER,
		"user": webhooksv1.Role_ROLE_USER}[claims.Role]
	key, err := s.cfg.Accounts.CreateApiKey(r.Context(), &webhooksv1.CreateApiKeyRequest{
		AccountId: claims.AccountID, UserEmail: claims.Email, Role: role})
	if err != nil {
		s.cfg.Logger.Error("mint session credential", "account_id", claims.AccountID, "error", err)
		s.render(w, http.StatusServiceUnavailable, "refused", nil, pageData{Title: "Sign-in failed",
			Data: "We could not sign you in right now. Please try again in a minute."})
		return
	}
	sid, err := s.cfg.Sessions.Create(session.Session{AccountID: claims.AccountID, Email: claims.Email,
		Role: claims.Role, APIKey: key.GetApiKey()}, s.cfg.Now())
	if err != nil {
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	s.cfg.Logger.Info("console sign-in", "account_id", claims.AccountID, "role", claims.Role)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sid, Path: "/", HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	// A page that moves on by itself rather than a redirect: a SameSite=Strict cookie set in a
	// navigation that started on another site (the product) is sent only from the next,
	// same-site navigation.
	s.render(w, http.StatusOK, "welcome", nil, pageData{Title: "Signing in"})
}

func (s *Server) logout(q *request) {
	s.cfg.Sessions.Delete(q.sid)
	http.SetCookie(q.w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	s.render(q.w, http.StatusOK, "signedout", nil, pageData{Title: "Signed out"})
}

func (s *Server) help(q *request) {
	q.page(s, http.StatusOK, "help", "Zapier and Make", nil)
}
