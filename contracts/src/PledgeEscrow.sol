// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title PledgeEscrow: the accounting shared by the ETH and the ERC-20 pledge escrow
/// @notice One escrow holds the pledges of one project (DESIGN.md, "Projects and pledges").
/// A pledge stays the pledger's: it can be withdrawn until the goal is reached. Once the total
/// reaches the goal before the deadline, anyone may finalize, which sends the whole total to
/// the organizer. After a deadline missed under the goal, each pledger reclaims their own
/// pledge (pull: no function ever loops over pledgers).
/// @dev The decisions, in one place:
/// - Time: the deadline is the first second at which pledging is closed. A pledge is accepted
///   while `block.timestamp < deadline`; the escrow has failed once `block.timestamp >= deadline`
///   with the total under the goal.
/// - Minimum: every single pledge (what arrived, for a token) must be at least `minPledge`;
///   a zero pledge is refused with {ZeroPledge} whatever the minimum.
/// - Past the goal: pledging stays open until the deadline or until finalized, whichever comes
///   first. Every pledge made once the goal is reached is locked like the rest and goes to the
///   organizer with it.
/// - Withdraw: only while Open (before the deadline, under the goal), and always the whole
///   pledge. Once the goal is reached a pledge is locked ({WithdrawAfterGoal}); after a missed
///   deadline the way out is {reclaim} ({WithdrawAfterDeadline}).
/// - The books after finalize: `totalPledged()` and `pledgeOf()` keep what was contributed, the
///   record from which the ledger issues units, while the escrow's own balance is zero. Before
///   finalize the escrow holds exactly `totalPledged()`, and the pledges sum to it at all times.
/// - The organizer must be able to receive the funds: if the payout fails, {finalize} reverts
///   and can be retried; the funds stay locked meanwhile (a pledger's refused payout likewise
///   leaves their pledge in place).
/// - Every function that moves value is `nonReentrant` (transient storage, EIP-1153) and
///   follows checks-effects-interactions; {pledge} is guarded too, so a payee cannot pledge
///   from inside a payout.
abstract contract PledgeEscrow is ReentrancyGuardTransient {
    /// @notice Where a project's escrow stands; derived from the total, the clock and the flag.
    enum State {
        Open, // before the deadline, under the goal: pledge and withdraw
        Funded, // goal reached, not yet finalized: pledges are locked, anyone may finalize
        Finalized, // the total went to the organizer
        Failed // deadline passed under the goal: each pledger reclaims their own
    }

    /// @notice `pledger` pledged `amount`; the escrow's total is now `total`.
    event Pledged(address indexed pledger, uint256 amount, uint256 total);
    /// @notice `pledger` took back their whole pledge `amount`; the total is now `total`.
    event Withdrawn(address indexed pledger, uint256 amount, uint256 total);
    /// @notice The total `amount` went to `organizer`; happens once.
    event Finalized(address indexed organizer, uint256 amount);
    /// @notice After a missed deadline `pledger` took back their pledge `amount`.
    event Reclaimed(address indexed pledger, uint256 amount);

    /// @notice Constructor: the organizer is the zero address.
    error ZeroOrganizer();
    /// @notice Constructor: a goal of zero.
    error ZeroGoal();
    /// @notice Constructor: the deadline is not after the block's time.
    error DeadlineNotInFuture(uint256 deadline, uint256 timestamp);
    /// @notice Constructor: a minimum pledge above the goal.
    error MinimumAboveGoal(uint256 minimum, uint256 goal);
    /// @notice A pledge of nothing.
    error ZeroPledge();
    /// @notice A pledge below the project's minimum.
    error PledgeBelowMinimum(uint256 amount, uint256 minimum);
    /// @notice A pledge at or after the deadline.
    error PledgeAfterDeadline(uint256 deadline, uint256 timestamp);
    /// @notice The escrow is finalized: nothing can change any more.
    error AlreadyFinalized();
    /// @notice Withdraw once the goal is reached: the pledge is locked.
    error WithdrawAfterGoal();
    /// @notice Withdraw after a missed deadline: use {reclaim}.
    error WithdrawAfterDeadline(uint256 deadline, uint256 timestamp);
    /// @notice Withdraw by someone who holds no pledge here.
    error NothingToWithdraw();
    /// @notice Finalize under the goal.
    error GoalNotReached(uint256 total, uint256 goal);
    /// @notice Reclaim after the goal was reached: the funds go to the organizer.
    error GoalReached(uint256 total, uint256 goal);
    /// @notice Reclaim before the deadline: use {withdraw}.
    error DeadlineNotPassed(uint256 deadline, uint256 timestamp);
    /// @notice Reclaim by someone who holds no pledge here.
    error NothingToReclaim();

    address private immutable _organizer;
    uint256 private immutable _goal;
    uint256 private immutable _deadline;
    uint256 private immutable _minPledge;

    mapping(address pledger => uint256 amount) private _pledges;
    uint256 private _totalPledged;
    bool private _finalized;

    /// @param organizer_ receives the total on {finalize}; not the zero address
    /// @param goal_ the total at which pledges lock and finalize becomes possible; above zero
    /// @param deadline_ unix seconds, after the current block: pledging closes at this second
    /// @param minPledge_ the least a single pledge may bring; at most the goal (zero: any nonzero)
    constructor(address organizer_, uint256 goal_, uint256 deadline_, uint256 minPledge_) {
        if (organizer_ == address(0)) revert ZeroOrganizer();
        if (goal_ == 0) revert ZeroGoal();
        if (deadline_ <= block.timestamp) revert DeadlineNotInFuture(deadline_, block.timestamp);
        if (minPledge_ > goal_) revert MinimumAboveGoal(minPledge_, goal_);
        _organizer = organizer_;
        _goal = goal_;
        _deadline = deadline_;
        _minPledge = minPledge_;
    }

    /// @notice Take back your whole pledge while the escrow is Open.
    function withdraw() external nonReentrant {
        if (_finalized) revert AlreadyFinalized();
        if (_totalPledged >= _goal) revert WithdrawAfterGoal();
        if (block.timestamp >= _deadline) revert WithdrawAfterDeadline(_deadline, block.timestamp);
        uint256 amount = _pledges[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _pledges[msg.sender] = 0;
        _totalPledged -= amount;
        emit Withdrawn(msg.sender, amount, _totalPledged);
        _pay(msg.sender, amount);
    }

    /// @notice Send the whole total to the organizer; anyone may call it once the goal is reached.
    function finalize() external nonReentrant {
        if (_finalized) revert AlreadyFinalized();
        if (_totalPledged < _goal) revert GoalNotReached(_totalPledged, _goal);
        _finalized = true;
        emit Finalized(_organizer, _totalPledged);
        _pay(_organizer, _totalPledged);
    }

    /// @notice After a deadline missed under the goal, take back your own pledge.
    function reclaim() external nonReentrant {
        if (_finalized) revert AlreadyFinalized();
        if (_totalPledged >= _goal) revert GoalReached(_totalPledged, _goal);
        if (block.timestamp < _deadline) revert DeadlineNotPassed(_deadline, block.timestamp);
        uint256 amount = _pledges[msg.sender];
        if (amount == 0) revert NothingToReclaim();
        _pledges[msg.sender] = 0;
        _totalPledged -= amount;
        emit Reclaimed(msg.sender, amount);
        _pay(msg.sender, amount);
    }

    /// @notice Who receives the total on finalize.
    function organizer() external view returns (address) {
        return _organizer;
    }

    /// @notice The total at which pledges lock and finalize becomes possible.
    function goal() external view returns (uint256) {
        return _goal;
    }

    /// @notice Unix seconds: the first second at which pledging is closed.
    function deadline() external view returns (uint256) {
        return _deadline;
    }

    /// @notice The least a single pledge may bring.
    function minPledge() external view returns (uint256) {
        return _minPledge;
    }

    /// @notice The sum of all pledges not withdrawn or reclaimed (kept as the record after finalize).
    function totalPledged() external view returns (uint256) {
        return _totalPledged;
    }

    /// @notice What `pledger` has pledged and not taken back.
    function pledgeOf(address pledger) external view returns (uint256) {
        return _pledges[pledger];
    }

    /// @notice Open, Funded, Finalized or Failed, as of the current block.
    function state() public view returns (State) {
        if (_finalized) return State.Finalized;
        if (_totalPledged >= _goal) return State.Funded;
        if (block.timestamp >= _deadline) return State.Failed;
        return State.Open;
    }

    /// @dev Checks that a pledge may arrive now, before any value moves.
    function _checkPledgeOpen() internal view {
        if (_finalized) revert AlreadyFinalized();
        if (block.timestamp >= _deadline) revert PledgeAfterDeadline(_deadline, block.timestamp);
    }

    /// @dev Books `amount`, which has already arrived, as `pledger`'s pledge.
    function _recordPledge(address pledger, uint256 amount) internal {
        if (amount == 0) revert ZeroPledge();
        if (amount < _minPledge) revert PledgeBelowMinimum(amount, _minPledge);
        _pledges[pledger] += amount;
        _totalPledged += amount;
        emit Pledged(pledger, amount, _totalPledged);
    }

    /// @dev Sends `amount` of the escrowed asset to `to`; reverts when it cannot.
    function _pay(address to, uint256 amount) internal virtual;
}
