"""Registration tokens Hearth makes: safe to paste after a command."""

from provisioning.tokens import TOKEN_ALPHABET, TOKEN_LENGTH, new_token


def test_tokens_are_letters_and_digits_of_full_length() -> None:
    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    for token in tokens:
        assert len(token) == TOKEN_LENGTH
        assert set(token) <= set(TOKEN_ALPHABET)
        # A leading "-" made `hearth tokens revoke TOKEN` an unknown option.
        assert not token.startswith("-")
