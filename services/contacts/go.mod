module github.com/customertext/webhooks/services/contacts

go 1.26.0

require github.com/customertext/webhooks/libs v0.0.0

replace github.com/customertext/webhooks/libs => ../../libs
