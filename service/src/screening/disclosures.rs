//! The consent sections a candidate reads and ticks before a background check runs (modelled on
//! the `disclosures` of Turn's two-step hosted form, `POST /fcra_check/form`), and the candidate
//! fields the form collects for a package.
use entity::SearchKind;
use serde::Serialize;

/// The key of the state summary of rights, the section only some states call for.
pub const STATE_SUMMARY: &str = "summary_of_state_rights";
pub const AUTHORIZATION: &str = "authorization_of_background_investigation";

/// Every section's key, in the order a candidate reads them (the state summary only where the
/// state calls for it).
pub const READING_ORDER: [&str; 5] = [
    "welcome",
    "summary_of_rights",
    "disclosure",
    STATE_SUMMARY,
    AUTHORIZATION,
];

/// The consumer reporting agency the forms and notices name: whoever operates this deployment.
/// FCRA §615(a) wants its name, address and telephone number in an adverse-action notice, and
/// California's ICRAA (Civil Code §1786.16) its name, address, telephone number and website in
/// the disclosure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// Where candidates reach it on the web: the deployment's public base URL.
    pub website: String,
}

impl Default for Agency {
    fn default() -> Self {
        Self {
            name: "clearhire".into(),
            address: None,
            phone: None,
            website: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Agency {
    /// The agency's contact as lines (name, address, telephone, website), those it has.
    pub fn contact_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("{} (consumer reporting agency)", self.name)];
        lines.extend(self.address.iter().map(|a| a.trim().replace('\n', ", ")));
        lines.extend(
            self.phone
                .iter()
                .map(|p| format!("Telephone: {}", p.trim())),
        );
        lines.push(self.website.clone());
        lines
    }

    /// [`Agency::contact_lines`] as plain text for mail, each line indented.
    pub fn contact_text(&self) -> String {
        self.contact_lines()
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn contact_html(&self) -> String {
        self.contact_lines()
            .iter()
            .map(|l| escape_html(l))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

/// The checkbox that accompanies a state summary where state law requires offering a free copy
/// of the report (California, Minnesota, Oklahoma). Offering it is the obligation; the answer is
/// not required to continue.
/// Welcome's optional box for hosted forms that collect names themselves.
pub const NO_MIDDLE_NAME_CHECKBOX: &str = "I do not have a middle name";
pub const COPY_OF_REPORT_CHECKBOX: &str = "I want to receive a copy of my Background Report";

/// One section of the consent form, shown in `order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The section's key, as in the `timestamps` object of Turn's consent call: `welcome`,
    /// `summary_of_rights`, `disclosure`, `summary_of_state_rights`,
    /// `authorization_of_background_investigation`.
    pub key: &'static str,
    /// 1-based position in the form.
    pub order: u32,
    pub title: String,
    /// Well-formed HTML without scripts; interpolated text is escaped.
    pub copy_html: String,
    /// Every checkbox shown with the section, in display order (plain text).
    pub checkboxes: Vec<String>,
    /// The checkboxes the candidate must tick before continuing (a subset of `checkboxes`).
    pub required_checkboxes: Vec<String>,
}

/// One candidate input the form collects, as in the `data` list of Turn's form response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequiredField {
    pub field: &'static str,
    pub required: bool,
}

/// The states whose law calls for a state summary of rights with the consent form.
const STATES_WITH_SUMMARY: [&str; 9] = ["CA", "NY", "WA", "MN", "OK", "ME", "MA", "NJ", "VT"];

/// Whether `state` (a two-letter USPS code, any case, surrounding spaces ignored) needs the
/// "A Summary of Your State Rights" section.
pub fn state_requires_summary(state: &str) -> bool {
    let state = state.trim();
    STATES_WITH_SUMMARY
        .iter()
        .any(|s| s.eq_ignore_ascii_case(state))
}

/// Escapes text for use in HTML element content and in quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The consent form's sections, in order: Welcome, the federal summary of rights, the
/// disclosure, the state summary (only when `state` requires one, see
/// [`state_requires_summary`]) and the authorization. `company_name` is the employer asking for
/// the check; it is escaped wherever it appears.
pub fn sections(company_name: &str, agency: &Agency, state: Option<&str>) -> Vec<Section> {
    let company = escape_html(company_name.trim());
    let agency_name = escape_html(agency.name.trim());
    let state_summary = state.and_then(|s| state_summary(s, agency));
    let mut out = vec![
        welcome(&company, &agency_name),
        summary_of_rights(),
        disclosure(&company, &agency_name),
    ];
    if let Some(s) = state_summary {
        out.push(s);
    }
    out.push(authorization(&company, &agency_name));
    for (i, section) in out.iter_mut().enumerate() {
        section.order = u32::try_from(i + 1).unwrap_or(u32::MAX);
    }
    out
}

/// The candidate inputs the form collects for a package running `searches`, in Turn's order.
///
/// `has_middle_name_known` is whether we already know if the candidate has a middle name (for
/// example the employer entered it): then `has_middle_name` need not be asked again. The
/// middle name itself is never required up front; the form asks for it when the candidate says
/// they have one.
///
/// Turn's list also has `gender`; we never collect it: no search we run (criminal, MVR,
/// sex-offender registries, watchlists, SSN trace) needs it to match records, and collecting
/// data we do not need only adds risk.
pub fn required_fields(searches: &[SearchKind], has_middle_name_known: bool) -> Vec<RequiredField> {
    let field = |field, required| RequiredField { field, required };
    let mut out = vec![
        field("first_name", true),
        field("last_name", true),
        field("middle_name", false),
        field("email", true),
        field("has_middle_name", !has_middle_name_known),
        field("phone_number", true),
        field("date_of_birth", true),
        field("ssn", true),
        field("zipcode", true),
    ];
    if searches.contains(&SearchKind::Mvr) {
        out.push(field("drivers_license_number", true));
        out.push(field("drivers_license_state", true));
    }
    out
}

fn section(
    key: &'static str,
    title: &str,
    copy_html: String,
    checkboxes: &[(&str, bool)],
) -> Section {
    Section {
        key,
        order: 0,
        title: title.to_owned(),
        copy_html,
        checkboxes: checkboxes.iter().map(|(c, _)| (*c).to_owned()).collect(),
        required_checkboxes: checkboxes
            .iter()
            .filter(|(_, required)| *required)
            .map(|(c, _)| (*c).to_owned())
            .collect(),
    }
}

const READ_SUMMARY_CHECKBOX: &str = "I have read and understood the summary of my rights";

fn welcome(company: &str, agency: &str) -> Section {
    let copy = format!(
        "<p>{company} (the “Company”) has engaged {agency} to obtain a consumer report \
         and/or investigative consumer report for employment purposes. {agency} will \
         provide a background investigation as a pre-condition of your engagement with the \
         Company and in compliance with applicable law.</p>"
    );
    let certify = format!(
        "I certify that this is me, and that the information provided in the present fields is \
         true, valid, accurate, and complete. By clicking Continue you agree to {agency}’s \
         Terms and Conditions and Privacy Policy."
    );
    section(
        "welcome",
        "Welcome",
        copy,
        &[(certify.as_str(), true), (NO_MIDDLE_NAME_CHECKBOX, false)],
    )
}

const LEARN_MORE: &str =
    r#"<a href="https://www.consumerfinance.gov/learnmore">www.consumerfinance.gov/learnmore</a>"#;

/// The CFPB model "A Summary of Your Rights Under the Fair Credit Reporting Act" (12 CFR part
/// 1022, appendix K), with `learn_more` where the form points to consumerfinance.gov (a link on
/// the consent page, the address in a plain-text notice).
struct ModelSummary {
    /// The form's line in Spanish, then its opening paragraph.
    spanish: String,
    opening: String,
    /// Each right: its heading, its text.
    rights: [(&'static str, String); 13],
    /// The federal enforcers: type of business, contact.
    contacts: [(&'static str, &'static str); 9],
}

fn model_summary(learn_more: &str) -> ModelSummary {
    let spanish = format!(
        "Para información en español, visite {learn_more} o escribe a la Consumer Financial \
         Protection Bureau, 1700 G Street N.W., Washington, DC 20552."
    );
    let opening = format!(
        "The federal Fair Credit Reporting Act (FCRA) promotes the accuracy, fairness, and \
         privacy of information in the files of consumer reporting agencies. There are many \
         types of consumer reporting agencies, including credit bureaus and specialty agencies \
         (such as agencies that sell information about check writing histories, medical \
         records, and rental history records). Here is a summary of your major rights under the \
         FCRA. For more information, including information about additional rights, go to \
         {learn_more} or write to: Consumer Financial Protection Bureau, 1700 G Street N.W., \
         Washington, DC 20552."
    );
    let rights: [(&str, String); 13] = [
        (
            "You must be told if information in your file has been used against you.",
            "Anyone who uses a credit report or another type of consumer report to deny your \
             application for credit, insurance, or employment – or to take another adverse \
             action against you – must tell you, and must give you the name, address, and phone \
             number of the agency that provided the information."
                .to_owned(),
        ),
        (
            "You have the right to know what is in your file.",
            "You may request and obtain all the information about you in the files of a \
             consumer reporting agency (your “file disclosure”). You will be required to provide \
             proper identification, which may include your Social Security number. In many \
             cases, the disclosure will be free. You are entitled to a free file disclosure if: \
             a person has taken adverse action against you because of information in your \
             credit report; you are the victim of identity theft and place a fraud alert in your \
             file; your file contains inaccurate information as a result of fraud; you are on \
             public assistance; or you are unemployed but expect to apply for employment within \
             60 days. In addition, all consumers are entitled to one free disclosure every 12 \
             months upon request from each nationwide credit bureau and from nationwide \
             specialty consumer reporting agencies."
                .to_owned(),
        ),
        (
            "You have the right to ask for a credit score.",
            "Credit scores are numerical summaries of your credit-worthiness based on \
             information from credit bureaus. You may request a credit score from consumer \
             reporting agencies that create scores or distribute scores used in residential \
             real property loans, but you will have to pay for it. In some mortgage \
             transactions, you will receive credit score information for free from the mortgage \
             lender."
                .to_owned(),
        ),
        (
            "You have the right to dispute incomplete or inaccurate information.",
            format!(
                "If you identify information in your file that is incomplete or inaccurate, and \
                 report it to the consumer reporting agency, the agency must investigate unless \
                 your dispute is frivolous. See {learn_more} for an explanation of dispute \
                 procedures."
            ),
        ),
        (
            "Consumer reporting agencies must correct or delete inaccurate, incomplete, or \
             unverifiable information.",
            "Inaccurate, incomplete, or unverifiable information must be removed or corrected, \
             usually within 30 days. However, a consumer reporting agency may continue to report \
             information it has verified as accurate."
                .to_owned(),
        ),
        (
            "Consumer reporting agencies may not report outdated negative information.",
            "In most cases, a consumer reporting agency may not report negative information that \
             is more than seven years old, or bankruptcies that are more than 10 years old."
                .to_owned(),
        ),
        (
            "Access to your file is limited.",
            "A consumer reporting agency may provide information about you only to people with \
             a valid need – usually to consider an application with a creditor, insurer, \
             employer, landlord, or other business. The FCRA specifies those with a valid need \
             for access."
                .to_owned(),
        ),
        (
            "You must give your consent for reports to be provided to employers.",
            format!(
                "A consumer reporting agency may not give out information about you to your \
                 employer, or a potential employer, without your written consent given to the \
                 employer. Written consent generally is not required in the trucking industry. \
                 For more information, go to {learn_more}."
            ),
        ),
        (
            "You may limit “prescreened” offers of credit and insurance you get based on \
             information in your credit report.",
            "Unsolicited “prescreened” offers for credit and insurance must include a toll-free \
             phone number you can call if you choose to remove your name and address from the \
             lists these offers are based on. You may opt out with the nationwide credit bureaus \
             at 1-888-5-OPTOUT (1-888-567-8688)."
                .to_owned(),
        ),
        (
            "Consumers have the right to obtain a security freeze.",
            "You have a right to place a “security freeze” on your credit report, which will \
             prohibit a consumer reporting agency from releasing information in your credit \
             report without your express authorization. The security freeze is designed to \
             prevent credit, loans, and services from being approved in your name without your \
             consent. However, using a security freeze may delay, interfere with, or prohibit \
             the timely approval of any subsequent request or application you make regarding a \
             new loan, credit, mortgage, or any other account involving the extension of \
             credit. As an alternative to a security freeze, you have the right to place an \
             initial or extended fraud alert on your credit file at no cost. An initial fraud \
             alert is a 1-year alert; if you are a victim of identity theft, you are entitled \
             to an extended fraud alert, which is a fraud alert lasting 7 years. A security \
             freeze does not apply to a person or entity, or its affiliates, or collection \
             agencies acting on its behalf, with which you have an existing account that \
             requests information in your credit report for the purposes of reviewing or \
             collecting the account."
                .to_owned(),
        ),
        (
            "You may seek damages from violators.",
            "If a consumer reporting agency, or, in some cases, a user of consumer reports or a \
             furnisher of information to a consumer reporting agency violates the FCRA, you may \
             be able to sue in state or federal court."
                .to_owned(),
        ),
        (
            "Identity theft victims and active duty military personnel have additional rights.",
            format!("For more information, visit {learn_more}."),
        ),
        (
            "States may enforce the FCRA, and many states have their own consumer reporting \
             laws.",
            "In some cases, you may have more rights under state law. For more information, \
             contact your state or local consumer protection agency or your state Attorney \
             General. For information about your federal rights, contact:"
                .to_owned(),
        ),
    ];
    let contacts: [(&str, &str); 9] = [
        (
            "Banks, savings associations, and credit unions with total assets of over $10 \
             billion and their affiliates",
            "Consumer Financial Protection Bureau, 1700 G Street N.W., Washington, DC 20552 \
             (affiliates that are not banks, savings associations, or credit unions should also \
             list the Federal Trade Commission: Consumer Response Center, Washington, DC 20580, \
             (877) 382-4357)",
        ),
        (
            "To the extent not included above: national banks, federal savings associations, \
             and federal branches and agencies of foreign banks; state member banks; nonmember \
             insured banks and insured state savings associations; federal credit unions",
            "Respectively: the Office of the Comptroller of the Currency, Customer Assistance \
             Group; the Federal Reserve Consumer Help Center; the FDIC Consumer Response Center; \
             the National Credit Union Administration",
        ),
        (
            "Air carriers",
            "Department of Transportation, Aviation Consumer Protection, 1200 New Jersey Avenue, \
             S.E., Washington, DC 20590",
        ),
        (
            "Creditors subject to the Surface Transportation Board",
            "Surface Transportation Board, 395 E Street, S.W., Washington, DC 20423",
        ),
        (
            "Creditors subject to the Packers and Stockyards Act",
            "Nearest Packers and Stockyards regional office",
        ),
        (
            "Small business investment companies",
            "United States Small Business Administration, Associate Deputy Administrator for \
             Capital Access, 409 Third Street, S.W., Washington, DC 20416",
        ),
        (
            "Brokers and dealers",
            "Securities and Exchange Commission, 100 F Street N.E., Washington, DC 20549",
        ),
        (
            "Federal land banks, federal land bank associations, federal intermediate credit \
             banks, and production credit associations",
            "Farm Credit Administration, 1501 Farm Credit Drive, McLean, VA 22102-5090",
        ),
        (
            "Retailers, finance companies, and all other creditors not listed above",
            "FTC Regional Office for the region in which the creditor operates or Federal Trade \
             Commission: Consumer Response Center, Washington, DC 20580, (877) 382-4357",
        ),
    ];
    ModelSummary {
        spanish,
        opening,
        rights,
        contacts,
    }
}

/// The model summary as the consent page shows it, its enforcers as a list.
fn summary_of_rights() -> Section {
    let m = model_summary(LEARN_MORE);
    let mut html = format!(
        "<p lang=\"es\">{}</p>\
         <p><strong>A Summary of Your Rights Under the Fair Credit Reporting Act</strong></p>\
         <p>{}</p>",
        m.spanish, m.opening
    );
    for (heading, body) in &m.rights {
        html.push_str(&format!("<p><strong>{heading}</strong> {body}</p>"));
    }
    html.push_str("<ol>");
    for (business, contact) in m.contacts {
        html.push_str(&format!(
            "<li><strong>{}:</strong> {}</li>",
            escape_html(business),
            escape_html(contact)
        ));
    }
    html.push_str("</ol>");
    section(
        "summary_of_rights",
        "A Summary of Your Rights Under the FCRA",
        html,
        &[(READ_SUMMARY_CHECKBOX, true)],
    )
}

/// The model summary as plain text, whole, for the notices mailed with adverse action.
pub fn summary_of_rights_text() -> String {
    let m = model_summary("www.consumerfinance.gov/learnmore");
    let mut text = format!(
        "A Summary of Your Rights Under the Fair Credit Reporting Act\n\n{}\n\n{}\n",
        m.spanish, m.opening
    );
    for (heading, body) in &m.rights {
        text.push_str(&format!("\n{heading} {body}\n"));
    }
    text.push('\n');
    for (n, (business, contact)) in m.contacts.iter().enumerate() {
        text.push_str(&format!("{}. {business}: {contact}\n", n + 1));
    }
    text
}

/// The FCRA §604(b)(2) disclosure. The section holds the disclosure and nothing else (no
/// release, waiver or acknowledgement): the law wants it in a document that consists solely of
/// the disclosure, which is why the authorization is a section of its own.
fn disclosure(company: &str, agency: &str) -> Section {
    let copy = format!(
        "<p><strong>{company}</strong> (the “Company”) may obtain a consumer report and/or an \
         investigative consumer report about you for employment purposes from {agency}, a \
         consumer reporting agency. These reports may include information about your \
         character, general reputation, personal characteristics, and/or mode of living, and \
         may contain information regarding your criminal history, Social Security number \
         verification, motor vehicle records (“driving records”), sex offender registries, and \
         government watchlists.</p>\
         <p>If an investigative consumer report is requested, you have the right, upon written \
         request made within a reasonable time, to a complete and accurate disclosure of the \
         nature and scope of the investigation.</p>"
    );
    section(
        "disclosure",
        "Disclosure Regarding Background Investigation",
        copy,
        &[(
            "I have read and understood the disclosure regarding background information",
            true,
        )],
    )
}

/// The state summary for `state`, when that state calls for one.
fn state_summary(state: &str, agency: &Agency) -> Option<Section> {
    let contact = agency.contact_html();
    let state = state.trim().to_ascii_uppercase();
    let (name, body, offer_copy): (&str, String, bool) = match state.as_str() {
        "CA" => (
            "California",
            format!(
                "<p>Under the California Investigative Consumer Reporting Agencies Act (ICRAA), \
                 the Company may obtain an investigative consumer report about you for \
                 employment purposes. Such a report may include information about your \
                 character, general reputation, personal characteristics, and mode of living. \
                 The investigative consumer reporting agency (ICRA) is:</p>\
                 <p>{contact}</p>\
                 <p>You may receive a copy of any report obtained by ticking the box below.</p>\
                 <p>Under California Civil Code section 1786.22, you are entitled to find out \
                 what is in the ICRA’s file on you with proper identification: in person, by \
                 visual inspection of your file during normal business hours and on reasonable \
                 notice (you may also request a copy, at no more than the actual copying cost); \
                 by telephone, after a written request with proper identification; or by \
                 having a copy sent to a specified addressee by certified mail. The ICRA will \
                 provide trained personnel to explain any information furnished to you and a \
                 written explanation of any coded information. You may be accompanied by one \
                 other person of your choosing, who must furnish reasonable \
                 identification.</p>"
            ),
            true,
        ),
        "NY" => (
            "New York",
            "<p>Article 23-A of the New York Correction Law governs the employment of persons \
             previously convicted of one or more criminal offenses. In short: an employer may \
             not deny you employment because of a prior conviction unless there is a direct \
             relationship between the offense and the job, or employing you would involve an \
             unreasonable risk to property or to the safety of others (section 752). In deciding, \
             the employer must weigh the factors of section 753: the public policy of New York \
             to encourage the employment of persons previously convicted; the duties of the \
             job; the bearing of the offense on your fitness for them; the time since the \
             offense; your age at the time; its seriousness; any information about your \
             rehabilitation and good conduct; and the employer's interest in protecting \
             property and people. A certificate of relief from disabilities or of good conduct \
             creates a presumption of rehabilitation. If you are denied employment, you may ask \
             for a written statement of the reasons, which must be given within 30 days \
             (section 754). The full text of Article 23-A is at \
             <a href=\"https://www.nysenate.gov/legislation/laws/COR/A23-A\">nysenate.gov/legislation/laws/COR/A23-A</a>.</p>\
             <p>You have the right, upon written request, to be informed whether an \
             investigative consumer report was requested about you; if one was, you will be \
             given the name and address of the consumer reporting agency that provided it, so \
             that you may inspect and receive a copy of the report.</p>"
                .to_owned(),
            false,
        ),
        "WA" => (
            "Washington",
            "<p>Under the Washington Fair Credit Reporting Act, if the Company requests an \
             investigative consumer report, you have the right, upon written request made \
             within a reasonable time, to a complete and accurate disclosure of the nature and \
             scope of the investigation, and to a written summary of your rights and remedies \
             under Washington law.</p>"
                .to_owned(),
            false,
        ),
        "MN" => (
            "Minnesota",
            "<p>Under Minnesota law, you have the right to submit a written request to the \
             consumer reporting agency for a complete and accurate disclosure of the nature and \
             scope of any consumer report the Company ordered about you. You may also receive a \
             free copy of the report by ticking the box below.</p>"
                .to_owned(),
            true,
        ),
        "OK" => (
            "Oklahoma",
            "<p>Under Oklahoma law, you may receive a free copy of any consumer report obtained \
             about you by ticking the box below.</p>"
                .to_owned(),
            true,
        ),
        "ME" => (
            "Maine",
            "<p>Under Maine law, you have the right, upon request, to be told whether an \
             investigative consumer report was requested about you. If one was, you will be \
             given the name and address of the consumer reporting agency that provided it, and \
             you may request and receive a copy of the report from that agency.</p>"
                .to_owned(),
            false,
        ),
        "MA" => (
            "Massachusetts",
            "<p>Under Massachusetts law, if an investigative consumer report is requested about \
             you, you have the right, upon written request, to receive a copy of it. If the \
             Company is inclined to make an adverse decision based on your criminal history, it \
             will first give you a copy of the criminal history information it relied on.</p>"
                .to_owned(),
            false,
        ),
        "NJ" => (
            "New Jersey",
            "<p>Under New Jersey law, you have the right to request a copy of your consumer \
             report from the consumer reporting agency, and to dispute the accuracy or \
             completeness of any information in it. New Jersey’s Fair Chance in Hiring Act \
             limits when an employer may ask about your criminal record during the hiring \
             process.</p>"
                .to_owned(),
            false,
        ),
        "VT" => (
            "Vermont",
            "<p>Under Vermont law, you have the right to request a copy of the information a \
             consumer reporting agency holds about you and to dispute the accuracy or \
             completeness of any information in it. Vermont law also requires your consent \
             before a credit report about you is obtained.</p>"
                .to_owned(),
            false,
        ),
        _ => return None,
    };
    let copy = format!("<p><strong>{name} applicants</strong></p>{body}");
    let checkboxes: &[(&str, bool)] = if offer_copy {
        &[
            (COPY_OF_REPORT_CHECKBOX, false),
            (READ_SUMMARY_CHECKBOX, true),
        ]
    } else {
        &[(READ_SUMMARY_CHECKBOX, true)]
    };
    Some(section(
        STATE_SUMMARY,
        "A Summary of Your State Rights",
        copy,
        checkboxes,
    ))
}

fn authorization(company: &str, agency: &str) -> Section {
    let copy = format!(
        "<p>I acknowledge receipt of the separate documents entitled Disclosure Regarding \
         Background Investigation and A Summary of Your Rights Under the Fair Credit Reporting \
         Act (and, where shown, A Summary of Your State Rights), and certify that I have read \
         and understand them. I hereby authorize the obtaining of “consumer reports” and/or \
         “investigative consumer reports” about me by <strong>{company}</strong> (the \
         “Company”) from {agency} at any time after receipt of this authorization and \
         throughout my employment or engagement, to the extent permitted by law. To this end, I \
         authorize any law enforcement agency, administrator, state or federal agency, \
         institution, school or university (public or private), information service bureau, \
         employer, or insurance company to furnish any and all background information \
         requested by {agency} and/or the Company.</p>\
         <p>I agree that an electronic or photographic copy of this authorization shall be as \
         valid as the original.</p>"
    );
    section(
        AUTHORIZATION,
        "Authorization of Background Investigation",
        copy,
        &[(
            "By clicking this checkbox, I indicate my agreement to all of the above.",
            true,
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(sections: &[Section]) -> Vec<&'static str> {
        sections.iter().map(|s| s.key).collect()
    }

    /// A small well-formedness check for the HTML we write: tags balance (void elements
    /// excepted), attribute values are double-quoted, `&` only starts a known entity, and there
    /// are no scripts or inline handlers.
    fn assert_well_formed(html: &str) {
        const VOID: [&str; 2] = ["br", "hr"];
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("javascript:"), "{html}");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find(['<', '>', '&']) {
            let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
            match c {
                b'>' => panic!("stray > in {html}"),
                b'&' => {
                    let ok = ["amp;", "lt;", "gt;", "quot;", "#39;"]
                        .iter()
                        .any(|e| after.starts_with(e));
                    assert!(ok, "bare & in {html}");
                    rest = after;
                }
                _ => {
                    let end = after.find('>').expect("unclosed tag");
                    let tag = &after[..end];
                    assert!(!tag.contains('<'), "{html}");
                    if let Some(name) = tag.strip_prefix('/') {
                        assert_eq!(stack.pop().as_deref(), Some(name), "{html}");
                    } else {
                        let name = tag.split(' ').next().unwrap_or_default();
                        assert!(
                            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
                        );
                        for attr in tag.split(' ').skip(1) {
                            let (key, value) = attr.split_once('=').expect("attribute value");
                            assert!(!key.to_ascii_lowercase().starts_with("on"), "{tag}");
                            assert!(value.starts_with('"') && value.ends_with('"'), "{tag}");
                        }
                        if !VOID.contains(&name) {
                            stack.push(name.to_owned());
                        }
                    }
                    rest = &after[end + 1..];
                }
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?} in {html}");
    }

    #[test]
    fn sections_without_state_summary() {
        for state in [None, Some("TX"), Some("fl"), Some(""), Some("CAL")] {
            let s = sections("Acme", &Agency::default(), state);
            assert_eq!(
                keys(&s),
                [
                    "welcome",
                    "summary_of_rights",
                    "disclosure",
                    "authorization_of_background_investigation"
                ],
                "{state:?}"
            );
            assert_eq!(s.iter().map(|s| s.order).collect::<Vec<_>>(), [1, 2, 3, 4]);
        }
    }

    #[test]
    fn sections_with_state_summary() {
        for state in STATES_WITH_SUMMARY {
            for spelled in [
                state.to_owned(),
                state.to_ascii_lowercase(),
                format!(" {state} "),
            ] {
                assert!(state_requires_summary(&spelled));
                let s = sections("Acme", &Agency::default(), Some(&spelled));
                assert_eq!(
                    keys(&s),
                    [
                        "welcome",
                        "summary_of_rights",
                        "disclosure",
                        "summary_of_state_rights",
                        "authorization_of_background_investigation"
                    ]
                );
                assert_eq!(keys(&s), READING_ORDER);
                assert_eq!(
                    s.iter().map(|s| s.order).collect::<Vec<_>>(),
                    [1, 2, 3, 4, 5]
                );
                assert_eq!(s[3].title, "A Summary of Your State Rights");
                assert_eq!(s[3].required_checkboxes, [READ_SUMMARY_CHECKBOX]);
                let offers_copy = s[3].checkboxes.iter().any(|c| c == COPY_OF_REPORT_CHECKBOX);
                assert_eq!(offers_copy, matches!(state, "CA" | "MN" | "OK"), "{state}");
            }
        }
        assert!(!state_requires_summary("TX"));
        let ca = sections("Acme", &Agency::default(), Some("CA"));
        assert!(ca[3].copy_html.contains("ICRAA"));
        assert_eq!(
            ca[3].checkboxes,
            [COPY_OF_REPORT_CHECKBOX, READ_SUMMARY_CHECKBOX]
        );
        let ny = &sections("Acme", &Agency::default(), Some("NY"))[3].copy_html;
        // What Article 23-A says, and where its full text is, rather than a promise of a copy.
        assert!(
            ny.contains("Article 23-A") && ny.contains("section 753"),
            "{ny}"
        );
        assert!(ny.contains("href=\"https://www.nysenate.gov/legislation/laws/COR/A23-A\""));
    }

    /// The operator's agency is named in every section that names one, and California's summary
    /// gives its address, telephone and website (ICRAA), all escaped.
    #[test]
    fn the_configured_agency_is_named_with_its_contact() {
        let agency = Agency {
            name: "Screening <Co>".into(),
            address: Some("1 Main St\nSpringfield, IL 62701".into()),
            phone: Some("+1 800 555 0100".into()),
            website: "https://screening.example.com".into(),
        };
        let s = sections("Acme", &agency, Some("CA"));
        for i in [0, 2, 4] {
            assert!(
                s[i].copy_html.contains("Screening &lt;Co&gt;"),
                "{}",
                s[i].copy_html
            );
            assert!(!s[i].copy_html.contains("clearhire"), "{}", s[i].copy_html);
        }
        assert!(
            s[3].copy_html.contains(
                "Screening &lt;Co&gt; (consumer reporting agency)<br>1 Main St, Springfield, IL \
             62701<br>Telephone: +1 800 555 0100<br>https://screening.example.com"
            ),
            "{}",
            s[3].copy_html
        );
        assert_eq!(
            agency.contact_text(),
            "  Screening <Co> (consumer reporting agency)\n  1 Main St, Springfield, IL 62701\n  \
             Telephone: +1 800 555 0100\n  https://screening.example.com"
        );
        let bare = Agency::default();
        assert_eq!(
            bare.contact_lines(),
            [
                "clearhire (consumer reporting agency)",
                "http://127.0.0.1:8080"
            ]
        );
    }

    #[test]
    fn titles_and_checkboxes() {
        let s = sections("Acme", &Agency::default(), Some("CA"));
        let titles: Vec<&str> = s.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Welcome",
                "A Summary of Your Rights Under the FCRA",
                "Disclosure Regarding Background Investigation",
                "A Summary of Your State Rights",
                "Authorization of Background Investigation"
            ]
        );
        assert_eq!(s[0].checkboxes.len(), 2);
        assert!(s[0].required_checkboxes[0].starts_with("I certify that this is me"));
        assert!(
            !s[0]
                .required_checkboxes
                .iter()
                .any(|c| c.contains("middle name"))
        );
        assert_eq!(s[1].required_checkboxes, [READ_SUMMARY_CHECKBOX]);
        assert_eq!(
            s[2].required_checkboxes,
            ["I have read and understood the disclosure regarding background information"]
        );
        assert_eq!(
            s[4].required_checkboxes,
            ["By clicking this checkbox, I indicate my agreement to all of the above."]
        );
        for section in &s {
            for required in &section.required_checkboxes {
                assert!(section.checkboxes.contains(required));
            }
        }
        assert!(
            s[0].copy_html
                .contains("Acme (the “Company”) has engaged clearhire")
        );
    }

    #[test]
    fn summary_of_rights_keeps_every_heading() {
        let html = &sections("Acme", &Agency::default(), None)[1].copy_html;
        let text = super::summary_of_rights_text();
        for heading in [
            "You must be told if information in your file has been used against you.",
            "You have the right to know what is in your file.",
            "You have the right to ask for a credit score.",
            "You have the right to dispute incomplete or inaccurate information.",
            "Consumer reporting agencies must correct or delete inaccurate, incomplete, or \
             unverifiable information.",
            "Consumer reporting agencies may not report outdated negative information.",
            "Access to your file is limited.",
            "You must give your consent for reports to be provided to employers.",
            "You may limit “prescreened” offers of credit and insurance",
            "Consumers have the right to obtain a security freeze.",
            "You may seek damages from violators.",
            "Identity theft victims and active duty military personnel have additional rights.",
            "States may enforce the FCRA",
        ] {
            assert!(html.contains(heading), "missing {heading}");
            // The notices carry it whole, as text.
            assert!(text.contains(heading), "missing {heading} in the text");
        }
        assert!(!text.contains('<'), "no markup in the text: {text}");
        assert!(text.contains("go to www.consumerfinance.gov/learnmore."));
        assert!(text.contains("9. Retailers, finance companies"));
    }

    #[test]
    fn disclosure_stands_alone() {
        let html = &sections("Acme", &Agency::default(), None)[2].copy_html;
        assert!(html.contains("consumer report and/or an investigative consumer report"));
        assert!(html.contains("for employment purposes"));
        let lower = html.to_lowercase();
        for extraneous in ["authoriz", "release", "waive", "agree"] {
            assert!(
                !lower.contains(extraneous),
                "{extraneous} in the disclosure"
            );
        }
    }

    #[test]
    fn html_is_well_formed_for_every_state() {
        let mut states: Vec<Option<&str>> = STATES_WITH_SUMMARY.iter().copied().map(Some).collect();
        states.push(None);
        for state in states {
            for section in sections("Acme <b>&amp;</b> \"Co\" 'x'", &Agency::default(), state) {
                assert_well_formed(&section.copy_html);
                assert_well_formed(&escape_html(&section.title));
            }
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape_html("Acme Café"), "Acme Café");
        let evil = "<script>steal()</script> O'Neil & Sons";
        for section in sections(evil, &Agency::default(), Some("CA")) {
            assert!(!section.copy_html.contains("<script"));
            assert!(!section.copy_html.contains(evil));
        }
        let s = sections(evil, &Agency::default(), None);
        assert!(
            s[0].copy_html
                .contains("&lt;script&gt;steal()&lt;/script&gt; O&#39;Neil &amp; Sons")
        );
        assert!(s[2].copy_html.contains("O&#39;Neil &amp; Sons"));
        assert!(s[3].copy_html.contains("O&#39;Neil &amp; Sons"));
    }

    fn names(fields: &[RequiredField]) -> Vec<&'static str> {
        fields.iter().map(|f| f.field).collect()
    }

    #[test]
    fn required_fields_without_mvr() {
        let f = required_fields(
            &[
                SearchKind::Criminal,
                SearchKind::SsnTrace,
                SearchKind::Watchlist,
            ],
            false,
        );
        assert_eq!(
            names(&f),
            [
                "first_name",
                "last_name",
                "middle_name",
                "email",
                "has_middle_name",
                "phone_number",
                "date_of_birth",
                "ssn",
                "zipcode"
            ]
        );
        for field in &f {
            assert_eq!(
                field.required,
                field.field != "middle_name",
                "{}",
                field.field
            );
        }
        assert!(!names(&f).contains(&"gender"));
        assert_eq!(names(&required_fields(&[], false)), names(&f));
    }

    #[test]
    fn required_fields_with_mvr() {
        let f = required_fields(&[SearchKind::Criminal, SearchKind::Mvr], false);
        assert_eq!(
            names(&f)[9..],
            ["drivers_license_number", "drivers_license_state"]
        );
        assert!(f[9..].iter().all(|f| f.required));
        assert_eq!(f.len(), 11);
        assert!(!names(&f).contains(&"gender"));
    }

    #[test]
    fn has_middle_name_not_asked_when_known() {
        let known = required_fields(&[SearchKind::Criminal], true);
        let unknown = required_fields(&[SearchKind::Criminal], false);
        let has = |f: &[RequiredField]| {
            f.iter()
                .find(|f| f.field == "has_middle_name")
                .map(|f| f.required)
        };
        assert_eq!(has(&known), Some(false));
        assert_eq!(has(&unknown), Some(true));
        assert_eq!(names(&known), names(&unknown));
    }
}
