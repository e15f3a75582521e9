//! A minimal SOAP endpoint, `POST /Service.asmx`: enough for real SFMC clients' first SOAP call (a Retrieve of
//! BusinessUnit) and the documented auth faults. Envelopes follow the shapes SFMC sends (shared/sfmc-auth.md §2,
//! docs/fidelity.md): the token goes in `<fueloauth>` in the SOAP header; a bad token is a `Security` fault
//! "Login failed", an expired one "Token Expired", throttling is HTTP 500 "Rate Limited"; faults are HTTP 500.

use super::scenario::RestFault;
use super::state::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const ENVELOPE_OPEN: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">"#;

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn header_block(action: &str) -> String {
    format!(
        "<soap:Header><wsa:Action>{action}</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID><wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To></soap:Header>",
        uuid_like()
    )
}

fn uuid_like() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        r.random::<u32>(),
        r.random::<u16>(),
        r.random::<u16>() & 0xfff,
        (r.random::<u16>() & 0x3fff) | 0x8000,
        r.random::<u64>() & 0xffff_ffff_ffff
    )
}

/// A SOAP 1.1 fault as SFMC sends it (HTTP 500).
pub fn fault(code: &str, text: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "{ENVELOPE_OPEN}{}<soap:Body><soap:Fault><faultcode xmlns:q0=\"http://schemas.xmlsoap.org/ws/2005/02/sc\">q0:{code}</faultcode><faultstring>{text}</faultstring><faultactor>https://webservice.exacttarget.com/Service.asmx</faultactor></soap:Fault></soap:Body></soap:Envelope>",
            header_block("http://schemas.xmlsoap.org/ws/2004/08/addressing/fault")
        ),
    )
}

/// The text of the first `<name ...>text</name>` element (any namespace prefix), trimmed.
fn element<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let tag_end = rest.find('>')?;
        let tag = &rest[..tag_end];
        let tag_name = tag.split_whitespace().next().unwrap_or("");
        let local = tag_name.rsplit(':').next().unwrap_or("");
        if local.eq_ignore_ascii_case(name) && !tag.ends_with('/') {
            let body = &rest[tag_end + 1..];
            let close = body.find("</")?;
            return Some(body[..close].trim());
        }
        rest = &rest[tag_end + 1..];
    }
    None
}

/// What to send: the response, the client the token belongs to, the client's latency.
pub(super) struct Answer {
    pub response: Response,
    pub client_id: Option<String>,
    pub delay: std::time::Duration,
}

fn now(response: Response) -> Answer {
    Answer {
        response,
        client_id: None,
        delay: std::time::Duration::ZERO,
    }
}

/// `POST /Service.asmx`, with the state locked (timeline applied).
pub(super) fn answer(st: &State, body: &[u8]) -> Answer {
    let Ok(doc) = std::str::from_utf8(body) else {
        return now(fault("Client", "The request is not valid XML."));
    };
    let token = element(doc, "fueloauth").unwrap_or("");
    let Some((info, expired)) = st.token_even_expired(token) else {
        return now(fault("Security", "Login failed"));
    };
    if expired {
        return now(fault("Security", "Token Expired"));
    }
    let c = &st.clients[info.client];
    let (client_id, latency, mid) = (c.spec.client_id.clone(), c.spec.latency, info.mid);
    let response = match c.spec.rest_fault {
        RestFault::RateLimited | RestFault::Blocked => fault("Client", "Rate Limited"),
        RestFault::Unavailable => xml(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable".to_string(),
        ),
        RestFault::OtherStack => fault("Security", "Login failed"),
        RestFault::None => retrieve(doc, mid),
    };
    Answer {
        response,
        client_id: Some(client_id),
        delay: latency,
    }
}

/// RetrieveRequestMsg: BusinessUnit gives the token's business unit; anything else an empty OK result.
fn retrieve(doc: &str, mid: u64) -> Response {
    if element(doc, "RetrieveRequest").is_none() {
        return fault(
            "Client",
            "The simulator answers RetrieveRequestMsg only (BusinessUnit).",
        );
    }
    let object = element(doc, "ObjectType").unwrap_or("");
    let results = if object.eq_ignore_ascii_case("BusinessUnit") {
        format!(
            "<Results xsi:type=\"BusinessUnit\"><Client><ID>{mid}</ID></Client><PartnerKey xsi:nil=\"true\" /><ID>{mid}</ID><ObjectID xsi:nil=\"true\" /><AccountType>BUSINESS_UNIT</AccountType><Name>Simulated business unit {mid}</Name><Subscription xsi:nil=\"true\" /><MasterUnsubscribeBehavior>ENTIRE_ENTERPRISE</MasterUnsubscribeBehavior></Results>"
        )
    } else {
        String::new()
    };
    xml(
        StatusCode::OK,
        format!(
            "{ENVELOPE_OPEN}{}<soap:Body><RetrieveResponseMsg xmlns=\"http://exacttarget.com/wsdl/partnerAPI\"><OverallStatus>OK</OverallStatus><RequestID>{}</RequestID>{results}</RetrieveResponseMsg></soap:Body></soap:Envelope>",
            header_block("RetrieveResponse"),
            uuid_like()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::element;

    #[test]
    fn elements_are_found_with_any_prefix() {
        let doc = r#"<s:Envelope><s:Header><fueloauth xmlns="http://exacttarget.com">abc</fueloauth></s:Header><s:Body><RetrieveRequestMsg><RetrieveRequest><ObjectType>BusinessUnit</ObjectType></RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"#;
        assert_eq!(element(doc, "fueloauth"), Some("abc"));
        assert_eq!(element(doc, "ObjectType"), Some("BusinessUnit"));
        assert_eq!(element(doc, "missing"), None);
        assert_eq!(element("<a:fueloauth/>", "fueloauth"), None);
    }
}
