// The API's response shapes (docs/openapi.json), as far as the pages read them.

export interface Vote {
  agent: string;
  probability: number | null;
  confidence: number | null;
  abstain_reason: string | null;
  reasons: string[];
}

export interface Signal {
  rank: number;
  symbol: string;
  action: "buy" | "hold" | "abstain" | string;
  score: number | null;
  confidence: number | null;
  price: number | null;
  client_order_id: string | null;
  order_status: string | null;
  reasons: string[];
  votes?: Vote[];
}

export interface SignalsResponse {
  asof: string | null;
  count: number;
  signals: Signal[];
  model_version?: string | null;
  decision_basis?: string | null;
  universe?: number | null;
  excluded_by_quality?: number | null;
}

export interface Bar { t: number; o: number; h: number; l: number; c: number; v: number | null }

export interface StatusChange { status: string; at: string | null; source: string }

export interface Order {
  client_order_id: string;
  symbol: string;
  side: string;
  intent: string | null;
  status: string;
  quantity: string;
  filled: string | null;
  average_price: string | null;
  reference_price: string | null;
  notional: string | null;
  fee: string | null;
  created_at: string | null;
  updated_at: string | null;
  filled_at: string | null;
  reason: string | null;
  slippage_bps: number | null;
  history: StatusChange[];
}

export interface Decision {
  asof: string;
  rank: number;
  action: string;
  score: number | null;
  confidence: number | null;
  price: number | null;
  client_order_id: string | null;
  order_status: string | null;
  reasons: string[];
  votes: Vote[];
}

export interface Position {
  symbol: string;
  quantity: string;
  average_price: string | null;
  cost: string | null;
  last_price: number | null;
  market_value: number | null;
  unrealized_pnl: number | null;
  updated_at: string | null;
}

export interface CoinResponse {
  symbol: string;
  timeframe: string;
  start: string;
  end: string;
  bars: Bar[];
  bars_note: string | null;
  decisions: Decision[];
  orders: Order[];
  position: Position | null;
  feature_columns: string[];
  features: (number | null)[][];
}

export interface EquityPoint {
  at: string;
  equity: number | null;
  reference: number | null;
  cash: number | null;
  fees: number | null;
  drawdown_pct: number | null;
  risk_level: string | null;
}

export interface PortfolioResponse {
  starting_equity_usd: string;
  equity_usd: number | null;
  cash_usd: number | null;
  fees_usd: number;
  drawdown_pct: number | null;
  max_drawdown_pct: number | null;
  positions: Position[];
  orders: Order[];
  equity: EquityPoint[];
  daily_pnl: { day: string; pnl_usd: number; pnl_pct: number | null }[];
  tracking: {
    cycles: number;
    mean_diff_bps: number | null;
    error_bps: number | null;
    gap_bps: number | null;
    fill_vs_decision_bps: number | null;
  };
  equity_note: string | null;
}

export interface KillSwitch {
  on: boolean;
  reason: string;
  actor: string;
  at: string;
  golive_rollback?: string | null;
}

export interface RiskResponse {
  venue_mode: "paper" | "testnet" | "live";
  level: string;
  since: string;
  reason: string;
  kill_switch: KillSwitch;
  equity_usd: string;
  max_asset_fraction: string;
  exposure_usd: Record<string, string>;
  gross_exposure_usd: string;
  gross_exposure_pct: string;
  account_equity_usd: string | null;
  daily_pnl_pct: string | null;
  drawdown_pct: string | null;
  recent_transitions: { from_level: string; to_level: string; reason: string; actor: string; at: string }[];
}

export interface AuditEntry {
  at: string;
  actor: string;
  action: string;
  request_id: string;
  correlation_id: string | null;
  details: Record<string, unknown>;
}

export interface AuditResponse { count: number; entries: AuditEntry[] }

export interface Breaker {
  name: string;
  kind: string;
  state: string;
  value: number | null;
  thresholds: Record<string, number>;
  reason: string | null;
  since: string | null;
}

export interface BreakersResponse { breakers: Breaker[] }

export interface GoLiveResponse {
  active: Record<string, unknown> | null;
  live_version: Record<string, unknown> | null;
  thresholds: Record<string, number>;
  runs: Record<string, unknown>[];
  evaluations: Record<string, unknown>[];
}

export interface ModelVersion {
  label: string;
  version: number;
  stage: string;
  capital_fraction: number | null;
  drift_blocked: boolean;
  drift_reason: string;
  created_at: string;
  train_end: string;
  target: string;
  features: number;
  oos: Record<string, unknown>;
  folds: Record<string, unknown>[];
  evaluation: Record<string, unknown>;
  history: Record<string, unknown>[];
}

export interface ModelsResponse { group: string; registry: string; versions: ModelVersion[]; note: string | null }
