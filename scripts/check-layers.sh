#!/usr/bin/env bash
# Layer check (src/lib.rs states the map): a module may use its own layer and the layers below
# it, never one above; `sim` sits beside `proxy` and only `cli` may use it; `identity` and
# `limit` share a rank and do not use each other. Reads every `crate::` path outside comments.
set -euo pipefail
cd "$(dirname "$0")/.."
find src -name '*.rs' ! -path src/lib.rs ! -path src/main.rs -print0 | xargs -0 perl -ne '
  BEGIN {
    %rank = (cli => 8, ops => 7, proxy => 6, sim => 6, telemetry => 5, policy => 4,
             identity => 3, limit => 3, config => 2, clock => 1, error => 1, pace => 1,
             spare => 1);
    $bad = 0;
  }
  if ($ARGV ne $file) {
    $file = $ARGV;
    ($own) = $file =~ m{^src/(\w+)};
    die "check-layers: $file is in no layer (add it to the map)\n" unless exists $rank{$own};
  }
  next if m{^\s*//};
  my @used;
  while (m{\bcrate::\{([^{}]*)}g) { push @used, map { /^\s*(\w+)/ ? $1 : () } split /,/, $1 }
  while (m{\bcrate::(\w+)}g) { push @used, $1 }
  for my $m (@used) {
    next if $m eq $own;
    my $why;
    if (!exists $rank{$m}) { $why = "unknown top-level module" }
    elsif ($rank{$m} > $rank{$own}) { $why = "layer above" }
    elsif ($rank{$m} == $rank{$own}) { $why = "sibling layer" }
    elsif ($m eq "sim" && $own ne "cli") { $why = "only cli may use sim" }
    next unless $why;
    print "$file:$.: $own uses $m ($why)\n";
    $bad = 1;
  }
  close ARGV if eof;
  END { exit $bad }
' && echo "check-layers: no module uses a layer above its own"
