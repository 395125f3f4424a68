//! Reading the pages the app answers with: status, redirect, text, forms, field errors.

use scraper::{Html, Selector};

/// Form fields in order, repeated names allowed.
pub type Fields = Vec<(String, String)>;

pub fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// Visible text, whitespace folded.
    pub fn text(&self) -> String {
        let html = self.html();
        let body = Selector::parse("body").unwrap();
        html.select(&body)
            .next()
            .map(|b| b.text().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn csrf_token(&self) -> String {
        self.input_value("input[name=csrf_token]")
            .expect("a page with a CSRF token")
    }

    pub fn input_value(&self, selector: &str) -> Option<String> {
        let html = self.html();
        let selector = Selector::parse(selector).unwrap();
        html.select(&selector)
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_owned))
    }

    /// The values of every input named `name`, in order.
    pub fn input_values(&self, name: &str) -> Vec<String> {
        let html = self.html();
        let selector = Selector::parse(&format!("input[name={name}]")).unwrap();
        html.select(&selector)
            .map(|e| e.value().attr("value").unwrap_or_default().to_owned())
            .collect()
    }

    /// The text of the first element matching `selector`, trimmed.
    pub fn element_text(&self, selector: &str) -> Option<String> {
        self.elements_text(selector).into_iter().next()
    }

    /// The text of every element matching `selector`, trimmed.
    pub fn elements_text(&self, selector: &str) -> Vec<String> {
        let html = self.html();
        let selector = Selector::parse(selector).unwrap();
        html.select(&selector)
            .map(|e| e.text().collect::<String>().trim().to_owned())
            .collect()
    }

    /// The message shown beside the field with this id, if any.
    pub fn field_error(&self, field_id: &str) -> Option<String> {
        let html = self.html();
        let selector = Selector::parse(&format!("#{field_id}-error")).unwrap();
        html.select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_owned())
    }

    /// Whether the input with this id is labelled with exactly this text.
    pub fn label_for(&self, field_id: &str) -> Option<String> {
        let html = self.html();
        let selector = Selector::parse(&format!("label[for=\"{field_id}\"]")).unwrap();
        html.select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_owned())
    }

    pub fn assert_redirect_to(&self, location: &str) {
        assert_eq!(
            self.status,
            303,
            "expected a redirect, got {}: {}",
            self.status,
            self.text()
        );
        assert_eq!(self.location.as_deref(), Some(location));
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Page {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Self {
            status,
            location,
            body,
            headers,
        }
    }
}
