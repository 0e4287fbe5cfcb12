# bash completion for jwtkit(1)
# Install as /usr/share/bash-completion/completions/jwtkit or source it.
# The option lists mirror the command table in cli/commands.c; the test
# tests/cli/test_help.sh fails when an option is missing here.

_jwtkit_opts() {
  case $1 in
    keygen) echo "--alg --bits --kid --out --pkcs11 --pub --format --passphrase-file --passphrase-env --force --help" ;;
    sign) echo "--key --keyring --kek-file --kek-env --secret-file --secret-env --alg --kid --claims --iss --sub --aud --ttl --nbf --at --typ --header --no-iat --jti --passphrase-file --passphrase-env --help" ;;
    verify) echo "--key --jwks --secret-file --secret-env --alg --iss --aud --sub --typ --leeway --at --max-age --require --insecure-no-aud --allow-http --passphrase-file --passphrase-env --verbose --help" ;;
    decode) echo "--json --at --help" ;;
    jwk) echo "--private --kid --alg --passphrase-file --passphrase-env --help" ;;
    jwks) echo "--alg --passphrase-file --passphrase-env --help" ;;
    thumbprint) echo "--uri --passphrase-file --passphrase-env --help" ;;
    scan) echo "--staged --worktree --max-size --allow-skipped --verbose --help" ;;
    pem) echo "--pair --json --passphrase-file --passphrase-env --help" ;;
    ui) echo "--listen --keyring --open --log-level --help" ;;
    gate) echo "--config --listen --log-level --check --fetch --help" ;;
    serve) echo "--config --listen --issuer --keyring --clients --alg --passphrase-file --passphrase-env --kek-file --kek-env --rotate-check --max-age --token-ttl --rotate-every --leeway --publish-ahead --transition-ttl --legacy-hs256-secret-file --thread-pool --max-connections --max-connections-per-ip --header-timeout --token-rate-ip --token-burst-ip --token-rate-client --token-burst-client --token-fail-cost --client-jwks-min-ttl --client-jwks-stale-max --log-level --demo --check --help" ;;
    serve-client) echo "--audience --scopes --ttl --alg --jwks --jwks-uri --assertion-alg --clients --config --help" ;;
    keyring) echo "--alg --max-age --token-ttl --leeway --rotate-every --publish-ahead --bits --pkcs11 --kid --verify-only --force --at --json --kek-file --kek-env --passphrase-file --passphrase-env --help" ;;
    *) echo "--help" ;;
  esac
}

_jwtkit() {
  local cur prev cmd
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="keygen sign verify decode jwk jwks thumbprint scan help pem keyring serve gate ui bench"
  local algs="HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"

  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return 0
  fi
  cmd=${COMP_WORDS[1]}

  case $prev in
    --alg)
      COMPREPLY=($(compgen -W "$algs" -- "$cur"))
      return 0
      ;;
    --format)
      COMPREPLY=($(compgen -W "pem jwk raw" -- "$cur"))
      return 0
      ;;
    --bits)
      COMPREPLY=($(compgen -W "2048 3072 4096 255 448" -- "$cur"))
      return 0
      ;;
    --secret-env | --passphrase-env | --kek-env)
      COMPREPLY=($(compgen -e -- "$cur"))
      return 0
      ;;
    --log-level)
      COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
      return 0
      ;;
    --keyring)
      COMPREPLY=($(compgen -d -- "$cur"))
      return 0
      ;;
    --key | --secret-file | --passphrase-file | --kek-file | --out | --pub | --jwks | --config)
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
      ;;
    --pkcs11)
      COMPREPLY=($(compgen -W "pkcs11:" -- "$cur"))
      return 0
      ;;
    --kid | --iss | --sub | --aud | --ttl | --nbf | --at | --typ | --header | --leeway | --max-age | --require | --claims | --max-size | --listen)
      return 0
      ;;
  esac

  if [ "$cmd" = help ]; then
    COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    return 0
  fi
  # jwtkit serve client SUBCOMMAND: its own options (tests/serve/help_test.sh
  # compares both lists with --help)
  if [ "$cmd" = serve ] && [ "${COMP_WORDS[2]-}" = client ]; then
    case $prev in
      --clients | --config | --jwks)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
        ;;
      --assertion-alg)
        COMPREPLY=($(compgen -W "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA" -- "$cur"))
        return 0
        ;;
      --audience | --scopes | --ttl | --jwks-uri) return 0 ;;
    esac
    if [ "$COMP_CWORD" -eq 3 ]; then
      COMPREPLY=($(compgen -W "add list remove rotate-secret" -- "$cur"))
    elif [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$(_jwtkit_opts serve-client)" -- "$cur"))
    fi
    return 0
  fi
  if [ "$cmd" = serve ]; then
    case $prev in
      --config | --keyring | --clients | --legacy-hs256-secret-file)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
        ;;
      --log-level)
        COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
        return 0
        ;;
      --listen | --issuer | --rotate-check | --token-ttl | --rotate-every | --publish-ahead | --transition-ttl | \
        --thread-pool | --max-connections | --max-connections-per-ip | --header-timeout | --token-rate-ip | \
        --token-burst-ip | --token-rate-client | --token-burst-client | --token-fail-cost)
        return 0
        ;;
    esac
    if [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then
      COMPREPLY=($(compgen -W "client" -- "$cur"))
      return 0
    fi
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_jwtkit_opts "$cmd")" -- "$cur"))
    return 0
  fi
  case $cmd in
    jwk | jwks | thumbprint | scan) COMPREPLY=($(compgen -f -- "$cur")) ;;
    pem)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "check" -- "$cur"))
      else
        COMPREPLY=($(compgen -f -- "$cur"))
      fi
      ;;
    keyring)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "init add rotate plan revoke release list jwks rekey trust-document kek-new" -- "$cur"))
      else
        COMPREPLY=($(compgen -f -- "$cur"))
      fi
      ;;
  esac
  return 0
}

complete -o filenames -o bashdefault -F _jwtkit jwtkit
