//! How hale's binaries print an error: the message, then each cause in the chain
//! that the text so far does not already say. Library errors here often carry their
//! cause in their own message (`file: No such file or directory (os error 2)`) and
//! also as their `source()`; printing the chain as is said it twice.

/// The error and its causes, each said once, separated by `: `.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("trace.csv: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let said = io.to_string();
        let e = Read { source: io };
        assert_eq!(super::error_chain(&e), format!("trace.csv: {said}"));
        #[derive(Debug, thiserror::Error)]
        #[error("loading the scenario")]
        struct Outer(#[source] Read);
        assert_eq!(
            super::error_chain(&Outer(e)),
            format!("loading the scenario: trace.csv: {said}")
        );
    }
}
